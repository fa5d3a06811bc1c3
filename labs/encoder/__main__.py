"""python -m labs.encoder --config run.yaml | --preset sentiment|qa --out run.yaml | search ... (see labs/encoder)."""
import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["search"]:
        from labs.encoder.search import main as search_main
        sys.exit(search_main(sys.argv[2:]))
    from labs.encoder.recipe import main
    sys.exit(main())
