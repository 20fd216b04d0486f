"""How the operator commands reach a daemon: ``--socket``/``--url``/``--token`` and errors as sentences.

Every operator command (status, resource, constraint, node, config apply, simulate --live) talks to one
node's API through ``hakeeper.api.client.ApiClient``; this module gives them one option set and turns the
client's failures into messages an operator can act on.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import click

from hakeeper.api.client import DEFAULT_SOCKET, ApiClient, ApiRequestError
from hakeeper.api.schemas import WriteResult

F = TypeVar("F", bound=Callable[..., Any])


class Target(NamedTuple):
    """Where the API is: a Unix socket (the local daemon) or a URL (a remote one), and the token to send."""

    socket: Path
    url: str | None
    token: str | None
    ca_file: Path | None = None  # the CA that signed a remote node's certificate (system CAs otherwise)


_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (
        ("--socket", "socket_path"),
        {
            "type": click.Path(dir_okay=False, path_type=Path),
            "envvar": "HAKEEPER_SOCKET",
            "default": DEFAULT_SOCKET,
            "show_default": True,
            "help": "The local daemon's API socket (env HAKEEPER_SOCKET).",
        },
    ),
    (
        ("--url",),
        {"envvar": "HAKEEPER_URL", "help": "A remote node's API, https://host:port (env HAKEEPER_URL)."},
    ),
    (
        ("--token",),
        {"envvar": "HAKEEPER_TOKEN", "help": "Bearer token; root needs none on the local socket."},
    ),
    (
        ("--ca-file",),
        {
            "type": click.Path(dir_okay=False, path_type=Path),
            "envvar": "HAKEEPER_CA_FILE",
            "help": "With --url: the CA certificate that signed the node's (env HAKEEPER_CA_FILE).",
        },
    ),
]


def api_params() -> list[click.Parameter]:
    """The shared options as parameters, for commands built without decorators (their callback receives
    ``socket_path``, ``url``, ``token`` and ``ca_file``)."""
    return [click.Option(list(decls), **attrs) for decls, attrs in _OPTIONS]


def api_options(func: F) -> F:
    """Add ``--socket``, ``--url``, ``--token`` and ``--ca-file`` to a command; it receives them as one
    ``target``."""

    @functools.wraps(func)
    def wrapper(
        *args: Any, socket_path: Path, url: str | None, token: str | None, ca_file: Path | None, **kwargs: Any
    ) -> Any:
        return func(*args, target=Target(socket_path, url, token, ca_file), **kwargs)

    decorated: Callable[..., Any] = wrapper
    for decls, attrs in reversed(_OPTIONS):
        decorated = click.option(*decls, **attrs)(decorated)
    return decorated  # type: ignore[return-value]


def explain_failure(err: ApiRequestError, target: Target) -> str:
    """The sentence to show for a failed request, with what to do about it."""
    if err.status == 0:
        if target.url is None and not target.socket.exists():
            return (
                f"the hakeeper daemon is not running on this node: there is no API socket at "
                f"{target.socket}; start it (hakeeper daemon --config /etc/hakeeper/cluster.toml) or give "
                "--socket PATH"
            )
        if "CERTIFICATE_VERIFY_FAILED" in err.message:
            return (
                f"the certificate of {target.url} is not trusted: give the CA certificate that signed it "
                "with --ca-file (or HAKEEPER_CA_FILE)"
            )
        return err.message  # the client's sentence: where it tried, why it failed, what to check
    if err.status == 401:
        return f"{err.message} (give it with --token or HAKEEPER_TOKEN)"
    if err.status == 409 and err.current_version:
        return (
            f"{err.message}\nSomeone else changed the cluster first (it is now at version "
            f"{err.current_version}); look at the current state and try again."
        )
    return err.message


@contextmanager
def connected(target: Target) -> Iterator[ApiClient]:
    """A client for ``target``; any API failure leaves the command as a ``ClickException`` sentence."""
    try:
        verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(target.ca_file)) if target.ca_file else True
        )
    except (OSError, ssl.SSLError) as err:
        raise click.ClickException(f"cannot use {target.ca_file} as a CA certificate: {err}") from err
    client = ApiClient(socket_path=target.socket, base_url=target.url, token=target.token, verify=verify)
    try:
        yield client
    except ApiRequestError as err:
        raise click.ClickException(explain_failure(err, target)) from err
    finally:
        client.close()


def describe_write(result: WriteResult) -> str:
    """One line saying what a write did: the committed version, or that nothing needed changing."""
    if not result.changed:
        return f"Nothing to change (the cluster is at version {result.version})."
    return f"Committed: CIB version {result.previous_version} -> {result.version} (log index {result.index})."
