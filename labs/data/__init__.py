"""Datasets: read, detect, map columns, validate, clean, convert, preview the loss mask, split, save.

    python -m labs.data inspect assets/formats/preference.jsonl
    python -m labs.data convert assets/preference/preference.jsonl --to preference --out /tmp/dpo.jsonl
    python -m labs.data convert reviews.csv --to sft --map "text=review,label=stars" --out /tmp/sft.jsonl
    python -m labs.data list

Topics: io (read files, saved datasets), detect (formats, column mapping), formats (convert), clean
(validate, fixes, PII, split), mask (which tokens carry loss: the one tokenize_row), display (rows as a person
sees them: chat as text, table widths), plots (lengths, label balance) and real (labelled text from installed
packages, saved as datasets on first use). Their public names are gathered here, so
`from labs import data; data.read_file(...)` reaches any of them.
Bad input raises DataError with one line that says what and where; the CLI prints it and exits 2.
"""
# real reads its package files through io and registers sentiment-real and drugs-real with io.load_saved
from labs.data import real
from labs.data.clean import (DEFAULT_NEAR_THRESHOLD, PII_KINDS, Problem, Report, apply_fix, label_counts, luhn_ok,
                             near_duplicate_pairs, scrub_rows, scrub_text, split_rows, validate)
from labs.data.detect import (FORMATS, DataError, apply_mapping, columns_of, detect_format, parse_mapping,
                              required_columns)
from labs.data.display import chat_html, column_widths, md_code
from labs.data.formats import SFT_FORMS, Rows, conversation, convert, pair, to_kto, to_preference, to_sft
from labs.data.io import (EXTENSIONS, Loaded, dataset_meta, datasets_dir, detect, hub_status, list_datasets,
                          load_hub, load_saved, max_bytes_default, push_to_hub, read_file, read_rows,
                          read_user_file, samples, save_dataset, write_jsonl)
from labs.data.mask import (length_stats, mask_html, prompt_of, reference, row_preview, sequence_length, sft_row,
                            slide7_html, slide7_labels, tokenize_row, training_mask, truncation_report)
from labs.data.plots import balance_figure, length_figure

__all__ = [
    "DEFAULT_NEAR_THRESHOLD", "EXTENSIONS", "FORMATS", "PII_KINDS", "SFT_FORMS", "DataError", "Loaded", "Problem", "Report", "Rows",
    "apply_fix", "apply_mapping", "balance_figure", "chat_html", "column_widths", "columns_of", "conversation",
    "convert", "dataset_meta", "datasets_dir", "detect", "detect_format", "hub_status", "label_counts",
    "length_figure", "length_stats", "list_datasets", "load_hub", "load_saved", "luhn_ok", "mask_html",
    "max_bytes_default", "md_code", "near_duplicate_pairs", "pair", "parse_mapping", "prompt_of", "push_to_hub",
    "read_file", "read_rows", "read_user_file", "real", "reference",
    "required_columns", "row_preview", "samples", "save_dataset", "scrub_rows", "scrub_text", "sequence_length",
    "sft_row", "slide7_html", "slide7_labels", "split_rows", "to_kto", "to_preference", "to_sft", "tokenize_row",
    "training_mask", "truncation_report", "validate"]
