"""The token rule of `churn serve`, without a browser: loopback needs none, any other
address refuses to start without one, and a server with a token rejects requests
that lack it (401) or carry a wrong one (403)."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from page_server import serving

from churn.cli import main
from churn.config import Params
from churn.errors import UserError
from churn.web.access import COOKIE, TOKEN_ENV, is_loopback, required_token

TOKEN = "s3cret-token-for-tests-0123456789"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"])
def test_loopback_needs_no_token(host: str) -> None:
    assert is_loopback(host)
    assert required_token(host, None, env={}) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "shop.example"])
def test_any_other_address_needs_a_token(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(UserError, match="--token or set CHURN_SERVE_TOKEN"):
        required_token(host, None, env={})
    assert required_token(host, None, env={TOKEN_ENV: TOKEN}) == TOKEN
    assert required_token(host, TOKEN, env={TOKEN_ENV: "other-token-of-enough-length"}) == TOKEN


def test_a_short_token_is_refused() -> None:
    with pytest.raises(UserError, match="at least 16 characters"):
        required_token("0.0.0.0", "secret", env={})


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    return int(exit_.value.code or 0), capsys.readouterr().err.splitlines()


def test_the_command_refuses_a_network_address_without_a_token(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project)
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    code, err = _fails(["serve", "--host", "0.0.0.0", "--port", "0"], capsys)
    assert code == 2
    assert err == [
        "churn: error: --host 0.0.0.0 makes the list reachable from other machines: give"
        " --token or set CHURN_SERVE_TOKEN (at least 16 characters), or bind 127.0.0.1"
    ]


def test_a_port_in_use_and_a_missing_list_are_one_line(
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(project)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = _fails(["serve", "--port", str(port)], capsys)
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"churn: error: cannot listen on 127.0.0.1:{port} (")
    assert err[0].endswith("choose another --port, or a --host this machine has")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("{}\n")
    code, err = _fails(["serve"], capsys)
    assert code == 2
    assert err == [
        "churn: error: no retention list to serve: data/scores/targets.parquet not found and"
        " no nightly run published in data/nightly (run `make run` or `churn export` first,"
        " or `churn nightly`)"
    ]


def _status(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def test_with_a_token_every_request_must_carry_it(project_params: Params) -> None:
    with serving(project_params, TOKEN) as url:
        for path in ("/", "/download.csv", "/customer/c0", "/report", "/results"):
            assert _status(url + path) == 401, path
            assert _status(url + path, {"Authorization": "Bearer wrong-token-0123456789"}) == 403
            assert _status(url + path, {"Cookie": f"{COOKIE}=wrong"}) == 403
            assert _status(url + path, {"Authorization": f"Bearer {TOKEN}"}) == 200, path
        # ?token= once: the cookie is set and the address loses the token
        opener = urllib.request.build_opener(_NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as redirect:
            opener.open(f"{url}/?band=high&token={TOKEN}", timeout=30)
        assert redirect.value.code == 303
        assert redirect.value.headers["location"] == f"{url}/?band=high"
        cookie = redirect.value.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}={TOKEN};") and "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert _status(f"{url}/?band=high", {"Cookie": f"{COOKIE}={TOKEN}"}) == 200


def test_without_a_token_only_a_loopback_host_name_is_served(project_params: Params) -> None:
    """A page elsewhere that points its own domain at 127.0.0.1 (DNS rebinding) sends its
    domain as the host: refused, so it cannot read the list."""
    with serving(project_params, None) as url:
        port = url.rsplit(":", 1)[1]
        assert _status(url + "/") == 200
        assert _status(url + "/", {"Host": f"localhost:{port}"}) == 200
        assert _status(url + "/", {"Host": f"[::1]:{port}"}) == 200
        for host in (f"evil.example:{port}", "evil.example", f"10.0.0.1:{port}", "[::1"):
            assert _status(url + "/download.csv", {"Host": host}) == 421, host
