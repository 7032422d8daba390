"""Secrets: an API key given by environment variable, by `-M api_key_env`, in the URL (user:pass@)
or in a `body.*` field never appears in any file the run writes (records, manifest, summary, cache,
lock) nor on stdout/stderr, on success and on the error paths: a server that answers 401 echoing
the request's headers and body in its error, and an unreachable server."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from aiohttp import web
from harness import cli, write_task

pytestmark = pytest.mark.slow  # subprocess runs and real servers: the full tier (make test)

SECRETS = {
    "OPENAI_API_KEY": "sk-envdefault-7f3a9c1e5b",
    "MY_LAB_CRED": "sk-named-2d8e4b6f0a",
    "url_password": "pw-in-url-9c7e5a3b1d",
    "body_token": "body-token-4a6c8e0b2f",
}
BASIC = base64.b64encode(f"alice:{SECRETS['url_password']}".encode()).decode()
NEEDLES = [*SECRETS.values(), BASIC]


async def echo_401(request: web.Request) -> web.Response:
    """A server that rejects the key and echoes everything it was sent (some do)."""
    if request.path.endswith("/models"):
        return web.json_response({"data": []})
    body = await request.text()
    echo = {"error": {"message": f"invalid key; headers={dict(request.headers)}; body={body}"}}
    return web.json_response(echo, status=401)


RECEIVED: list[str] = []  # what the answering server was sent, to show the secrets were used


async def answer_ok(request: web.Request) -> web.Response:
    """Answers normally (a completion quoting the key would be the model's answer, not a leak)."""
    RECEIVED.append(f"{dict(request.headers)} {await request.text()}")
    if request.path.endswith("/models"):
        return web.json_response({"data": []})
    return web.json_response({"choices": [{"message": {"content": "(A)"}, "finish_reason": "stop"}]})


def _leaks(paths: list[Path], streams: list[str]) -> list[str]:
    found = []
    for root in paths:
        for f in [root] if root.is_file() else root.rglob("*"):
            if f.is_file():
                data = f.read_bytes()
                found += [f"{f}: {n}" for n in NEEDLES if n.encode() in data]
    for i, s in enumerate(streams):
        found += [f"stream {i}: {n}" for n in NEEDLES if n in s]
    return found


def _args(url: str, tasks: Path, out: Path, key_env: str | None) -> list[str]:
    spec_url = url.replace("http://", f"http://alice:{SECRETS['url_password']}@")
    args = [
        "run",
        "-t",
        "rel_choice",
        "--tasks-dir",
        str(tasks),
        "-m",
        f"openai:{spec_url}@m",
        "--out",
        str(out),
    ]
    args += ["-M", f"body.api_key={SECRETS['body_token']}", "-M", "max_retries=0", "--limit", "3"]
    return args + (["-M", f"api_key_env={key_env}"] if key_env else [])


@pytest.mark.parametrize("key_env", [None, "MY_LAB_CRED"], ids=["OPENAI_API_KEY", "api_key_env"])
@pytest.mark.parametrize("server", ["401 echo", "answers", "unreachable"])
def test_no_secret_is_written_or_printed(tmp_path: Path, key_env: str | None, server: str) -> None:
    from test_openai_faults import serving_in_thread

    tasks = write_task(tmp_path / "tasks")
    out = tmp_path / "out"
    env = {"OPENAI_API_KEY": SECRETS["OPENAI_API_KEY"], "MY_LAB_CRED": SECRETS["MY_LAB_CRED"]}
    if server == "unreachable":
        runs = [cli(*_args("http://127.0.0.1:9/v1", tasks, out, key_env), env=env)]
        runs.append(cli(*_args("http://127.0.0.1:9/v1", tasks, out, key_env), "--debug", env=env))
    else:
        with serving_in_thread(echo_401 if server == "401 echo" else answer_ok) as url:
            runs = [cli(*_args(url, tasks, out, key_env), env=env)]
            runs.append(cli(*_args(url, tasks, out, key_env), "--no-cache", env=env))  # resume, errors again
    streams = [s for r in runs for s in (r.stdout, r.stderr)]
    if server == "401 echo":
        assert runs[0].returncode in (1, 2) and "401" in runs[0].stderr + json.dumps(
            [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
        )
    if server == "answers":
        assert runs[0].returncode == 0, runs[0].stderr
        sent = " ".join(RECEIVED)
        key = SECRETS[key_env or "OPENAI_API_KEY"]
        assert f"Bearer {key}" in sent and SECRETS["body_token"] in sent  # the secrets were used
    assert _leaks([out, Path(os.environ["EVALKIT_CACHE_DIR"])], streams) == []


SECRETS_CHECKED = len(NEEDLES)
