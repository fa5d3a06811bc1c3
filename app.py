"""Fine-tuning Lab — learn and do LLM fine-tuning hands-on, on your own GPU or CPU.

    python app.py                          # http://127.0.0.1:7860, one person, no sign-in
    python app.py --port 7861 --host 0.0.0.0 --auth ana:secret --auth ben:secret2   # a team server, signed in
    python app.py --host 0.0.0.0 --auth-file users.txt --snapshot-dir /mnt/bucket/lab   # roles, snapshots

Shared mode (labs/access.py) is on whenever others can reach the app or people sign in: --auth, --auth-file,
a Space with hf_oauth, a non-loopback --host or --share (the last two without sign-in need --public).

Also a Hugging Face Space's app_file. The page is served first; the training libraries are
imported and the model is loaded in the background, with its progress in the header.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import socket
import sys
import threading
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

TABS = [  # (title, module, what it teaches — shown while a tab is not built yet)
    ("Dataset builder", "components.dataset_tab",
     "import, map, validate and clean instruction, chat, preference and KTO datasets"),
    ("LoRA explorer", "components.lora_tab",
     "what rank, alpha and targets cost and buy, measured on real runs"),
    ("SFT trainer", "components.sft_tab",
     "LoRA or full supervised fine-tuning with TRL, live curves, stop and resume"),
    ("Preference labeler", "components.preference_tab",
     "people pick the better of two generations; DPO or ORPO trains on the stored pairs"),
    ("RLHF loop", "components.rlhf_tab",
     "generate, people rate, the model is updated from the ratings, round after round"),
    ("Evaluation", "components.evaluation_tab",
     "before/after metrics, worst examples, forgetting, run comparison"),
    ("Admin", "components.admin_tab",
     "who is online, the queue and its owners, work and agreement per person, guidelines, export"),
]


class ModelLoads:
    """Models loading or loaded for the header, by spec, in background threads: the page never
    waits for a model, and each browser session's header follows the spec its own picker shows."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items: dict[str, dict] = {}

    def load_async(self, spec: str) -> None:
        with self.lock:
            if self.items.get(spec, {}).get("state") in ("loading", "ready"):
                return
            self.items[spec] = {"state": "loading", "message": "starting"}
        threading.Thread(target=self._load, args=(spec,), daemon=True, name="model-load").start()

    def _load(self, spec: str) -> None:
        item = self.items[spec]
        t0 = time.perf_counter()
        try:
            from labs import models
            loaded = models.CACHE.get(spec, progress=lambda m: item.update(message=m))
        except Exception as e:  # noqa: BLE001 - shown in the header; the app keeps serving
            from labs.models import ModelError
            msg = str(e) if isinstance(e, ModelError) else f"model '{spec}': {type(e).__name__}: {e}"
            item.update(state="error", message=msg)
            return
        item.update(state="ready", message=loaded.header(), seconds=time.perf_counter() - t0)

    def state(self, spec: str) -> str:
        return self.items.get(spec, {}).get("state", "idle")

    def header(self, spec: str | None) -> str:
        item = self.items.get(spec or "", {})
        state = item.get("state")
        if state == "ready":
            return f"**Model:** {item['message']} · loaded in {item['seconds']:.1f} s"
        if state == "error":
            return f"**Model:** ⚠️ {item['message']}"
        if state == "loading":
            return f"**Model:** ⏳ loading `{spec}` — {item['message']}"
        return f"**Model:** `{spec}` (not loaded yet)"


MODEL = ModelLoads()


def build(default_model: str | None = None, snapshots=None):
    import gradio as gr

    from components.shared import AppContext, who_line
    from labs import access, models, paths, runs

    default_model = default_model or models.DEFAULT_MODEL
    with gr.Blocks(title="Fine-tuning Lab") as demo:
        with gr.Row(equal_height=True):
            gr.Markdown("## 🧪 Fine-tuning Lab", elem_id="lab-title")
            model_spec = gr.Dropdown(
                choices=[default_model] + [r for _, r in _adapter_choices(runs)], value=default_model,
                allow_custom_value=True, label="Model (Hub id, local directory, or a run's adapter)", scale=3)
        header = gr.Markdown(MODEL.header(default_model))
        header_timer = gr.Timer(1.0, active=False)  # ticks only while this session's model is loading
        with gr.Row():
            who = gr.Markdown()  # shared mode: who this page acts as
            storage = gr.Markdown(storage_note(snapshots))
            if access.settings().identity == "oauth":
                gr.LoginButton(scale=0)
        ctx = AppContext(paths.data_dir(), model_spec)

        for title, module, teaches in TABS:
            with gr.Tab(title) as tab:
                first = len(ctx.loads)
                if importlib.util.find_spec(module) is None:
                    gr.Markdown(f"**Coming next:** {teaches}. This tab is not built yet.")
                else:
                    importlib.import_module(module).build(ctx)
            for fn, outputs, inputs in ctx.loads[first:]:  # its pickers, read again each time the tab is opened
                tab.select(fn, inputs, outputs, queue=False, show_progress="hidden", api_visibility="private")

        def on_pick(spec):
            if not (spec or "").strip():
                raise gr.Error("Model: give a Hub id, a local directory, or a run directory.")
            try:  # a shared lab loads nothing from elsewhere on the server
                paths.check_server_path(spec, "model")
            except paths.NameRefused as e:
                raise gr.Error(str(e)) from None
            MODEL.load_async(spec.strip())
            return MODEL.header(spec.strip()), gr.Timer(active=MODEL.state(spec.strip()) == "loading")

        def tick(spec):
            spec = (spec or "").strip()
            # 'idle' (--no-preload, nothing picked) stops it too: only a loading model changes the header
            return MODEL.header(spec), gr.Timer(active=MODEL.state(spec) == "loading")

        model_spec.change(on_pick, model_spec, [header, header_timer], queue=False, api_name="pick_model")
        header_timer.tick(tick, model_spec, [header, header_timer], queue=False, show_progress="hidden",
                          api_name="model_status")
        demo.load(tick, model_spec, [header, header_timer], queue=False)
        demo.load(who_line, None, who, queue=False, api_visibility="private")
        demo.load(lambda: storage_note(snapshots), None, storage, queue=False, api_visibility="private")
        for fn, outputs, inputs in ctx.loads:  # pickers derived from the data directory, read at each page load
            demo.load(fn, inputs, outputs, queue=False, show_progress="hidden", api_visibility="private")
    return demo


def storage_note(snapshots) -> str:
    """Where the data lives and when it was last saved elsewhere (shared mode); '' for one local person."""
    from labs import access, paths
    if not access.shared():
        return ""
    if snapshots is None:
        return (f"⚠️ Data lives only on this server's disk ({paths.data_dir()}): on a Space a restart loses every "
                "label, rating, run and dataset. Set a snapshot target, or export everything from the Admin tab.")
    when = time.strftime("%H:%M:%S", time.localtime(snapshots.last_saved)) if snapshots.last_saved else "not yet"
    err = f" · ⚠️ last snapshot failed: {snapshots.last_error}" if snapshots.last_error else ""
    return f"Data: {paths.data_dir()} · snapshots to {snapshots.target} every " \
           f"{snapshots.every_s / 60:g} min · last saved {when}{err}"


def _adapter_choices(runs):
    out = []
    for r in runs.list_runs():
        if r.trained_model() is not None:
            out.append((r.id, str(r.dir)))
    return out


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the server itself binds: connections of an app that just stopped (TIME_WAIT) do not
        # block the port, another server listening on it does.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host if host not in ("0.0.0.0", "") else "0.0.0.0", port))
            return True
        except OSError:
            return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python app.py", description="Fine-tuning Lab: a web app for LLM fine-tuning.")
    ap.add_argument("--host", default=os.environ.get("LAB_HOST", "0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1"),
                    help="address to listen on (0.0.0.0 for every interface); default 127.0.0.1")
    ap.add_argument("--port", type=int, default=int(os.environ.get("LAB_PORT", os.environ.get("GRADIO_SERVER_PORT", 7860))),
                    help="port; default 7860")
    ap.add_argument("--model", default=os.environ.get("LAB_MODEL"),
                    help="model spec: Hub id, local directory or run directory; default SmolLM2-135M-Instruct")
    ap.add_argument("--data-dir", default=os.environ.get("LAB_DATA_DIR", "lab_data"),
                    help="where runs, datasets, ratings and the model cache live; default ./lab_data")
    ap.add_argument("--share", action="store_true", help="also open a public Gradio share link")
    ap.add_argument("--no-preload", action="store_true", help="do not load the model at start")
    ap.add_argument("--auth", action="append", default=[], metavar="USER:PASSWORD[:ROLE]",
                    help="a person who may sign in (repeatable); role admin, member (default) or viewer")
    ap.add_argument("--auth-file", metavar="FILE", default=os.environ.get("LAB_AUTH_FILE"),
                    help="people who may sign in, with roles and hashed passwords (python -m labs.access add-user "
                    "NAME --file FILE); default LAB_AUTH_FILE")
    ap.add_argument("--public", action="store_true", default=os.environ.get("LAB_PUBLIC", "") not in ("", "0"),
                    help="serve a reachable lab without sign-in (names typed, not verified; printed at start); "
                    "LAB_PUBLIC=1 on a Space without hf_oauth")
    ap.add_argument("--snapshot-dir", default=os.environ.get("LAB_SNAPSHOT_DIR"),
                    help="where snapshots of the data directory go (a mounted bucket); restored at start into an "
                    "empty data directory")
    ap.add_argument("--snapshot-minutes", type=float, default=float(os.environ.get("LAB_SNAPSHOT_MINUTES", "10")),
                    help="minutes between snapshots (and one at a clean shutdown); default 10")
    a = ap.parse_args(argv)

    from labs import access, paths
    from labs.errors import LabError
    space = bool(os.environ.get("SPACE_ID"))
    try:
        paths.set_data_dir(a.data_dir)
        users = {**(access.read_auth_file(a.auth_file) if a.auth_file else {}), **access.parse_auth(a.auth)}
        mode = access.plan(a.host, a.share, users, space=space, oauth=space and bool(os.environ.get("OAUTH_CLIENT_ID")),
                           public=a.public)
        settings = access.configure(shared=mode["shared"], users=users, identity=mode["identity"])
        snapshots = _snapshots(a.snapshot_dir, a.snapshot_minutes)
    except LabError as e:
        print(f"error: {e.line()}", file=sys.stderr)
        return 2
    if not port_free(a.host, a.port):
        print(f"error: port {a.port} on {a.host} is in use; choose another with --port (or PORT=… for make run)",
              file=sys.stderr)
        return 2

    from labs.models import DEFAULT_MODEL
    demo = build(a.model or DEFAULT_MODEL, snapshots=snapshots)
    if not a.no_preload:
        MODEL.load_async(a.model or DEFAULT_MODEL)
    print(f"Fine-tuning Lab: http://{a.host}:{a.port}  (data: {paths.data_dir()})", flush=True)
    print(f"mode: {'shared' if mode['shared'] else 'local'}, sign-in: {mode['identity']}"
          + (f" ({len(users)} people)" if users else ""), flush=True)
    if mode["identity"] == "public":
        print("public: " + access.PUBLIC_EXPOSES.format(**settings.limits), flush=True)
    import gradio as gr

    from components.keys import KEYS_JS
    upload_mb = settings.limits["upload_mb"] if mode["shared"] else int(os.environ.get("LAB_MAX_UPLOAD_MB", "200"))
    try:
        demo.queue(default_concurrency_limit=4).launch(
            server_name=a.host, server_port=a.port, share=a.share, show_error=True, quiet=True, head=KEYS_JS,
            theme=gr.themes.Soft(primary_hue="indigo"),
            auth=access.login(users) if users else None, auth_message="Fine-tuning Lab: sign in" if users else None,
            # Shared: the data directory is never served as files (the database, configs, everyone's runs);
            # downloads a person asks for are copied to a temporary file first. Local: one person, their files.
            allowed_paths=None if mode["shared"] else [str(paths.data_dir())],
            blocked_paths=[str(paths.data_dir())] if mode["shared"] else None,
            # uploads over the limit are refused before they reach the disk (labs.data checks it again)
            max_file_size=f"{upload_mb}mb")
    finally:
        if snapshots is not None:
            snapshots.stop()  # one more at a clean shutdown
    return 0


def _snapshots(target: str | None, minutes: float):
    """Restore the newest snapshot into an empty data directory, then snapshot every `minutes`. With
    LAB_SNAPSHOT_REPO (a Hub dataset repo) the snapshots are written to a local folder that is downloaded from
    the repo at start and pushed to it every `minutes`."""
    from labs import paths, snapshot
    repo = os.environ.get("LAB_SNAPSHOT_REPO")
    if repo and not target:
        target = os.environ.get("LAB_SNAPSHOT_LOCAL", str(paths.data_dir().parent / "lab_snapshots"))
        snapshot.hub_pull(repo, target)
        snapshot.hub_push_scheduler(target, repo, every_min=minutes)
    if not target:
        return None
    if not (paths.data_dir() / snapshot.DB).exists():
        snap = snapshot.restore(paths.data_dir(), target)
        print(f"restored {snap} into {paths.data_dir()}" if snap else f"no snapshot in {target} yet", flush=True)
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a Space's stop: the final snapshot still runs
    return snapshot.Scheduler(paths.data_dir(), target, every_s=minutes * 60).start()


if __name__ == "__main__":
    sys.exit(main())
