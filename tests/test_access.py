"""Who is who and who may do what (labs/access.py), without Gradio; the server-path check; ZeroGPU's decorator."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from labs import access
from labs.access import Actor, RightsError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def local_again(monkeypatch):
    for k in ("LAB_ADMINS", "LAB_MEMBERS", "LAB_VIEWERS"):
        monkeypatch.delenv(k, raising=False)
    yield
    access.configure()  # every other test runs in local mode


def test_local_mode_is_one_trusted_person():
    access.configure()
    a = access.actor(None)
    assert a == access.LOCAL and a.role == "admin"
    for action in access.WORDS:
        access.check(a, action, owner="someone")


def test_roles_from_the_auth_file_the_flags_and_the_environment(monkeypatch):
    monkeypatch.setenv("LAB_ADMINS", "root1")
    users = {**access.parse_auth(["ana:pw-ana-1", "vic:pw-vic-1:viewer", "boss:pw-boss-1:admin"])}
    access.configure(shared=True, users=users, identity="auth")
    assert [access.actor(n).role for n in ("ana", "vic", "boss", "root1")] == ["member", "viewer", "admin", "admin"]
    assert access.actor(None) == access.ANONYMOUS
    login = access.login(users)
    assert login("ana", "pw-ana-1") and not login("ana", "pw-ana-2") and not login("eve", "pw-ana-1")


@pytest.mark.parametrize("who,action,owner,ok", [
    (Actor("ana", "member", "auth"), "control_run", "ana", True),
    (Actor("ana", "member", "auth"), "control_run", "ben", False),
    (Actor("boss", "admin", "auth"), "control_run", "ben", True),
    (Actor("ana", "member", "auth"), "write_dataset", "ben", False),   # replacing another's dataset
    (Actor("ana", "member", "auth"), "write_dataset", None, True),     # a new one
    (Actor("ana", "member", "auth"), "label", None, True),
    (Actor("vic", "viewer", "auth"), "label", None, False),
    (Actor("vic", "viewer", "auth"), "start_run", None, False),
    (Actor("vic", "viewer", "auth"), "read", None, True),
    (access.ANONYMOUS, "rate", None, False),
    (Actor("ana", "member", "auth"), "admin", None, False),
    (Actor("ana", "member", "auth"), "server_token", None, False),
])
def test_rights_in_shared_mode(who, action, owner, ok):
    access.configure(shared=True, identity="auth")
    assert access.allowed(who, action, owner) is ok
    if ok:
        access.check(who, action, owner)
    else:
        with pytest.raises(RightsError):
            access.check(who, action, owner)


def test_refusals_say_who_may():
    access.configure(shared=True, identity="auth")
    with pytest.raises(RightsError, match=r"^ana may stop, kill, resume or delete runs only their own; run r1 "
                                          r"belongs to ben \(an admin may act on anyone's\)$"):
        access.check(Actor("ana", "member", "auth"), "control_run", owner="ben", what="run r1")
    with pytest.raises(RightsError, match=r"^sign in to label pairs: this lab is shared"):
        access.check(access.ANONYMOUS, "label")
    with pytest.raises(RightsError, match=r"^vic is a viewer and may not rate answers \(ask an admin\)$"):
        access.check(Actor("vic", "viewer", "auth"), "rate")


def test_the_servers_hub_token_is_lent_to_admins_only():
    access.configure(shared=True, identity="auth")
    assert access.hub_token(Actor("ana", "member", "auth"), typed=" hf_own ") == "hf_own"
    assert access.hub_token(Actor("ana", "member", "auth"), oauth_token="hf_oauth") == "hf_oauth"
    assert access.hub_token(Actor("boss", "admin", "auth")) is None  # huggingface_hub then reads HF_TOKEN
    with pytest.raises(RightsError, match="used only for its admins"):
        access.hub_token(Actor("ana", "member", "auth"))
    access.configure()
    assert access.hub_token(access.LOCAL) is None


@pytest.mark.parametrize("kw,shared,identity", [
    (dict(host="127.0.0.1"), False, "local"),
    (dict(host="127.0.0.1", users={"a": ("", "h")}), True, "auth"),
    (dict(host="0.0.0.0", users={"a": ("", "h")}), True, "auth"),
    (dict(host="0.0.0.0", public=True), True, "public"),
    (dict(host="127.0.0.1", share=True, public=True), True, "public"),
    (dict(host="0.0.0.0", space=True, oauth=True), True, "oauth"),
])
def test_the_mode_follows_reach_and_sign_in(kw, shared, identity):
    m = access.plan(**kw)
    assert (m["shared"], m["identity"]) == (shared, identity)


@pytest.mark.parametrize("kw,why", [(dict(host="0.0.0.0"), "listening on 0.0.0.0"),
                                    (dict(host="127.0.0.1", share=True), "a public share link"),
                                    (dict(host="0.0.0.0", space=True), "listening on 0.0.0.0 and a Hugging Face Space")])
def test_reachable_without_sign_in_needs_public(kw, why):
    with pytest.raises(RightsError, match=f"^{why} makes this lab reachable by others, and nobody signs in"):
        access.plan(**kw)


def test_names_that_become_identity_are_plain():
    for bad in ("", "a b", "<b>x</b>", "[x](http://e)", "x" * 65, "-lead"):
        with pytest.raises(RightsError):
            access.check_name(bad)
    assert access.check_name(" ana.b@lab-1 ") == "ana.b@lab-1"


def test_auth_file_round_trip(tmp_path):
    f = tmp_path / "users.txt"
    for name, role, pw in (("ana", "member", "correct horse"), ("boss", "admin", "battery staple")):
        p = subprocess.run([sys.executable, "-m", "labs.access", "add-user", name, "--role", role, "--file", str(f)],
                           input=pw + "\n", capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert p.returncode == 0, p.stderr
    users = access.read_auth_file(f)
    assert {n: r for n, (r, _) in users.items()} == {"ana": "member", "boss": "admin"}
    assert "correct horse" not in f.read_text() and oct(f.stat().st_mode & 0o777) == "0o600"
    assert access.login(users)("boss", "battery staple") and not access.login(users)("boss", "correct horse")
    f.write_text("ana superuser pbkdf2_sha256$1$x$y\n")
    with pytest.raises(RightsError, match="line 1: expected 'name role pbkdf2_sha256"):
        access.read_auth_file(f)


def test_server_paths_outside_the_data_directory_are_refused_in_shared_mode(tmp_path, monkeypatch):
    from labs import paths
    data = tmp_path / "lab_data"
    paths.set_data_dir(data)
    (data / "datasets").mkdir(parents=True, exist_ok=True)
    planted = tmp_path / "planted.jsonl"
    planted.write_text('{"prompt": "p", "completion": "c"}\n')
    inside = data / "datasets" / "mine.jsonl"
    inside.write_text(planted.read_text())
    assert paths.check_server_path(str(planted), shared=False) == str(planted)  # one person: their own disk
    with pytest.raises(paths.NameRefused, match="reads only files inside its data directory"):
        paths.check_server_path(str(planted), "data", shared=True)
    with pytest.raises(paths.NameRefused):
        paths.check_server_path(str(data / ".." / "planted.jsonl"), shared=True)
    assert paths.check_server_path(str(inside), shared=True) == str(inside)
    assert paths.check_server_path("assets/instruct", shared=True) == "assets/instruct"
    assert paths.check_server_path("HuggingFaceTB/SmolLM2-135M-Instruct", shared=True)  # a Hub id, not a path
    assert paths.check_server_path("my-dataset", shared=True) == "my-dataset"           # a saved name


def test_zero_gpu_decorator_is_a_no_op_off_zero_gpu(monkeypatch):
    from labs import gpu
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)

    def f(x):
        return x + 1
    assert gpu.gpu(30)(f) is f and gpu.fits(10_000) == (True, "")
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert gpu.fits(60) == (True, "")
    assert gpu.fits(600)[0] is False and "longer than one ZeroGPU call" in gpu.fits(600)[1]
    assert gpu.fits(None)[0] is False


def test_generation_asks_zero_gpu_for_a_gpu_on_a_zero_gpu_space(tmp_path):
    """On ZeroGPU the sampler is wrapped by spaces.GPU(duration=60); elsewhere it is the plain function. (In a
    process of its own, with a stand-in `spaces` package that records what it is asked.)"""
    import os
    (tmp_path / "spaces.py").write_text("ASKED = []\ndef GPU(duration):\n"
                                        "    return lambda fn: ASKED.append((fn.__name__, duration)) or fn\n")
    code = "import labs.generate, spaces; print(sorted(spaces.ASKED))"
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}:{ROOT}"}
    on = subprocess.run([sys.executable, "-c", code], env={**env, "SPACES_ZERO_GPU": "true"}, cwd=ROOT,
                        capture_output=True, text=True, timeout=120)
    assert on.stdout.strip() == "[('chat', 30), ('sample', 60)]", on.stderr
    off = subprocess.run([sys.executable, "-c", code], env={k: v for k, v in env.items() if k != "SPACES_ZERO_GPU"},
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert off.stdout.strip() == "[]", off.stderr
