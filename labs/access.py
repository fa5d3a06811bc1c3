"""Who is who and who may do what, when colleagues share one lab (a Space or a team server).

    from labs import access
    access.configure(shared=True, admins={"ana"})          # app.py does this once from its flags / the Space
    actor = access.actor("ben", via="auth")                 # Actor(name='ben', role='member', via='auth')
    access.check(actor, "control_run", owner="ana")         # RightsError: ben may stop only his own runs

Modes. *Local* (the default: one person on loopback, no sign-in): every caller is the local user, an admin,
and a typed annotator name is taken as it is. *Shared* (`--auth`, `--auth-file`, a Space with OAuth, a
non-loopback host or `--share`): the author of everything written is the signed-in person — from
gr.Request.username (`--auth`) or gr.OAuthProfile (a Space) — never a typed name; a caller without an
identity writes nothing.

Roles. admin: everything, anyone's runs, datasets and evaluations; the server's Hub token. member: label,
rate, start runs and evaluations, save datasets; stop, kill, resume and delete only their own. viewer: reads
only (no labels either: a label is data that trains a model, so it is a member's act; a viewer can be
promoted in the auth file or LAB_ADMINS / LAB_MEMBERS). The check is here, in labs, because every Gradio
endpoint can be called directly (gradio_client) whatever the page shows.

Auth file (`--auth-file FILE`): one person a line, `name role pbkdf2_sha256$iterations$salt$hash`;
`python -m labs.access add-user NAME --role member --file FILE` writes one (the password is read from the
terminal or stdin, never a flag).
"""
from __future__ import annotations

import getpass
import hashlib
import hmac
import os
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from labs.errors import LabError

ROLES = ("admin", "member", "viewer")
ITERATIONS = 200_000
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")  # a name that becomes identity: no markup, no spaces
# what each role may do; ownership is checked on top for the member's own-only actions
RIGHTS = {
    "admin": {"read", "label", "rate", "write_dataset", "start_run", "control_run", "push", "admin", "server_token",
              "loop_settings"},
    "member": {"read", "label", "rate", "write_dataset", "start_run", "control_run", "push", "loop_settings"},
    "viewer": {"read"},
}
OWN_ONLY = {"control_run", "write_dataset", "loop_settings"}  # a member: only what they own
WORDS = {"label": "label pairs", "rate": "rate answers", "write_dataset": "save or replace datasets",
         "start_run": "start runs or evaluations", "control_run": "stop, kill, resume or delete runs",
         "push": "push to the Hub", "admin": "use the admin controls", "server_token": "push with the server's token",
         "loop_settings": "change an RLHF loop's settings", "read": "read"}


class RightsError(LabError):
    """Refused: the actor has no right to this (the message says who may)."""


@dataclass(frozen=True)
class Actor:
    name: str
    role: str
    via: str = "local"   # local | auth | oauth | anonymous

    @property
    def signed_in(self) -> bool:
        return self.via in ("auth", "oauth", "local")


@dataclass
class Settings:
    shared: bool = False
    admins: set = field(default_factory=set)
    members: set = field(default_factory=set)    # empty: every signed-in person not named elsewhere is a member
    viewers: set = field(default_factory=set)
    default_role: str = "member"
    users: dict = field(default_factory=dict)    # auth file: name -> (role, hash)
    limits: dict = field(default_factory=lambda: dict(LIMITS))
    server_token_for_admins: bool = True
    public: bool = False                         # --public: visitors without sign-in, under typed names
    identity: str = "local"                      # local | auth | oauth | public


# Per-person limits in shared mode (LAB_LIMIT_<NAME> overrides each).
LIMITS = {"active_runs": 2, "upload_mb": 50, "pairs_per_hour": 200}
LOCAL = Actor("local", "admin", "local")
ANONYMOUS = Actor("anonymous", "viewer", "anonymous")
_settings = Settings()
_lock = threading.Lock()
_seen: dict[str, float] = {}  # name -> last time a request of theirs was seen (the admin view's "online")


def configure(shared: bool = False, admins=(), members=(), viewers=(), users: dict | None = None,
              default_role: str = "member", limits: dict | None = None, server_token_for_admins: bool = True,
              identity: str = "local") -> Settings:
    """Set the mode once at start (app.py); environment LAB_ADMINS / LAB_MEMBERS / LAB_VIEWERS add names."""
    global _settings
    env = lambda k: {x.strip() for x in os.environ.get(k, "").split(",") if x.strip()}  # noqa: E731
    lim = dict(LIMITS)
    for k in lim:
        if os.environ.get(f"LAB_LIMIT_{k.upper()}"):
            lim[k] = int(os.environ[f"LAB_LIMIT_{k.upper()}"])
    lim.update(limits or {})
    if default_role not in ROLES:
        raise RightsError(f"default role: one of {', '.join(ROLES)}, got {default_role!r}")
    _settings = Settings(shared=shared, admins=set(admins) | env("LAB_ADMINS"), members=set(members) |
                         env("LAB_MEMBERS"), viewers=set(viewers) | env("LAB_VIEWERS"), default_role=default_role,
                         users=dict(users or {}), limits=lim, server_token_for_admins=server_token_for_admins,
                         public=identity == "public", identity=identity if shared else "local")
    return _settings


def settings() -> Settings:
    return _settings


def shared() -> bool:
    return _settings.shared


def role_of(name: str) -> str:
    s = _settings
    if name in s.admins:
        return "admin"
    if s.users.get(name, ("",))[0]:
        return s.users[name][0]
    if name in s.viewers:
        return "viewer"
    if s.members and name not in s.members:
        return "viewer"
    return s.default_role


def actor(name: str | None, via: str = "auth") -> Actor:
    """The actor behind a request: in local mode the local user (an admin); in shared mode the signed-in name
    with its role, or ANONYMOUS when there is none."""
    if not _settings.shared:
        return LOCAL
    if via == "public" and _settings.public:  # --public: a typed name, unverified, never an admin
        name = check_name(name) if name else "visitor"
        with _lock:
            _seen[name] = time.time()
        return Actor(name, "member", "public")
    if not name:
        return ANONYMOUS
    name = check_name(name)
    with _lock:
        _seen[name] = time.time()
    return Actor(name, role_of(name), via)


def check_name(name: str) -> str:
    """A name that becomes identity (an annotator, a rater, an author): letters, digits and . _ @ -, up to 64."""
    name = (name or "").strip()
    if not NAME.fullmatch(name):
        raise RightsError(f"name {name[:40]!r}: use letters, digits and . _ @ - (up to 64, starting with a letter "
                          "or digit)")
    return name


def allowed(actor_: Actor, action: str, owner: str | None = None) -> bool:
    if action not in WORDS:
        raise ValueError(f"unknown action {action!r}")
    if not _settings.shared:
        return True
    if action not in RIGHTS.get(actor_.role, set()):
        return False
    if action in OWN_ONLY and actor_.role != "admin" and owner is not None:
        return owner == actor_.name
    return True


def check(actor_: Actor, action: str, owner: str | None = None, what: str = "") -> None:
    """Refuse (RightsError) what this actor may not do; `owner` is the author of the thing acted on."""
    if allowed(actor_, action, owner):
        return
    thing = f" {what}" if what else ""
    if actor_.via == "anonymous":
        raise RightsError(f"sign in to {WORDS[action]}{thing}: this lab is shared, and what is written here is "
                          "recorded with its author")
    if action in OWN_ONLY and action in RIGHTS.get(actor_.role, set()):
        raise RightsError(f"{actor_.name} may {WORDS[action]} only their own; {what or 'this'} belongs to "
                          f"{owner or 'someone else'} (an admin may act on anyone's)")
    raise RightsError(f"{actor_.name} is a {actor_.role} and may not {WORDS[action]}{thing} (ask an admin)")


def hub_token(actor_: Actor, typed: str | None = None, oauth_token: str | None = None) -> str | None:
    """The token a push uses: the person's own (typed, or their sign-in's with write-repos scope), else the
    server's (HF_TOKEN; returned as None, which huggingface_hub reads) only for an admin - or for the one local
    user. A member without a token of their own is refused: the server's token is never lent to a visitor."""
    check(actor_, "push")
    own = (typed or "").strip() or (oauth_token or "").strip()
    if own:
        return own
    if not _settings.shared or (actor_.role == "admin" and _settings.server_token_for_admins):
        return None
    raise RightsError("push: give your own Hub token (or sign in with write access); this lab's own token is "
                      "used only for its admins")


def online(within_s: float = 300) -> list[tuple[str, float]]:
    """People seen in the last `within_s` seconds, most recent first: (name, seconds ago)."""
    now = time.time()
    with _lock:
        return sorted(((n, now - t) for n, t in _seen.items() if now - t <= within_s), key=lambda x: x[1])


# --------------------------------------------------------------------------- which mode, from the app's flags
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def plan(host: str, share: bool = False, users: dict | None = None, space: bool = False, oauth: bool = False,
         public: bool = False) -> dict:
    """Decide the mode from how the app is reached and how people sign in:
    {"shared": bool, "identity": local | auth | oauth | public, "reachable": why others can reach it}.
    Reachable by others (a non-loopback host, --share, a Space) without sign-in is refused unless `public`."""
    reachable = [why for ok, why in ((host not in LOOPBACK, f"listening on {host}"), (share, "a public share link"),
                                     (space, "a Hugging Face Space")) if ok]
    identity = "oauth" if oauth else "auth" if users else None
    if identity is None and reachable and not public:
        raise RightsError(f"{' and '.join(reachable)} makes this lab reachable by others, and nobody signs in: add "
                          "--auth user:password (or --auth-file FILE; hf_oauth on a Space) so that every label and "
                          "run has its author, or pass --public to serve it to anyone anyway")
    if identity is None and reachable:
        identity = "public"
    return {"shared": bool(identity), "identity": identity or "local", "reachable": reachable}


PUBLIC_EXPOSES = ("anyone who reaches it may label, rate, save datasets and start runs (at most {active_runs} "
                  "queued or running each) under a name they type, which nobody verifies; every run's results and "
                  "every dataset can be read; nobody can use the server's Hub token or the admin controls; files on "
                  "the server outside the data directory stay closed")


# --------------------------------------------------------------------------- passwords and the auth file
def hash_password(password: str, salt: str | None = None, iterations: int = ITERATIONS) -> str:
    salt = salt or secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations).hex()
    return f"pbkdf2_sha256${iterations}${salt}${digest}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    return hmac.compare_digest(hash_password(password, salt, int(iterations)), stored)


def read_auth_file(path: str | Path) -> dict[str, tuple[str, str]]:
    """name -> (role, hash) from an auth file; a bad line is refused with its number."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise RightsError(f"--auth-file: {p} cannot be read ({e.strerror or e})") from None
    users: dict[str, tuple[str, str]] = {}
    for i, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3 or parts[1] not in ROLES or not parts[2].startswith("pbkdf2_sha256$"):
            raise RightsError(f"--auth-file: {p} line {i}: expected 'name role pbkdf2_sha256$...' "
                              f"(role one of {', '.join(ROLES)}); write lines with python -m labs.access add-user")
        users[check_name(parts[0])] = (parts[1], parts[2])
    if not users:
        raise RightsError(f"--auth-file: {p} names nobody; add one with python -m labs.access add-user")
    return users


def parse_auth(pairs: list[str]) -> dict[str, tuple[str, str]]:
    """--auth user:password[:role] (repeatable): name -> (role, hash); without a role, LAB_ADMINS and the
    defaults decide (a member)."""
    users = {}
    for item in pairs:
        name, sep, password = item.partition(":")
        role = ""
        if password.rpartition(":")[2] in ROLES:
            password, _, role = password.rpartition(":")
        if not sep or not password:
            raise RightsError(f"--auth: expected user:password (or user:password:role), got {name!r}:…")
        users[check_name(name)] = (role, hash_password(password, iterations=1000))
    return users


def login(users: dict[str, tuple[str, str]]):
    """The callable Gradio's launch(auth=...) takes: (username, password) -> bool."""
    def check_login(username: str, password: str) -> bool:
        entry = users.get((username or "").strip())
        return bool(entry) and verify_password(password or "", entry[1])
    return check_login


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m labs.access", description="Manage the lab's auth file.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    add = sub.add_parser("add-user", help="add or replace one person (the password is read from the terminal or "
                         "stdin)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="member")
    add.add_argument("--file", required=True)
    a = ap.parse_args(argv)
    try:
        name = check_name(a.name)
        password = getpass.getpass(f"password for {name}: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
        if len(password) < 8:
            raise RightsError("password: at least 8 characters")
        p = Path(a.file)
        keep = [ln for ln in (p.read_text().splitlines() if p.exists() else []) if ln.split()[:1] != [name]]
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_text("\n".join([*keep, f"{name} {a.role} {hash_password(password)}"]) + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, p)
    except (RightsError, OSError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    print(f"{name} ({a.role}) written to {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
