"""``smsrecon sandbox``: a strict local Altegio status callback, with staged faults."""

from __future__ import annotations

import logging

import click

from pipeline import logsafe
from pipeline.cli.context import EXIT_USAGE, fail, serve_in_foreground


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port to listen on (0: a free one; the bound URL is printed).",
)
@click.option("--token", "tokens", multiple=True, help="A partner token Altegio accepts (repeat).")
@click.option(
    "--forbidden-token",
    "forbidden_tokens",
    multiple=True,
    help="A known token whose application lacks the permission: 403, code 15 (repeat).",
)
@click.option(
    "--unknown-id",
    "unknown_ids",
    multiple=True,
    help="A message id Altegio does not know: 404, code 30 (repeat).",
)
@click.option(
    "--faults",
    default="",
    metavar="SPEC",
    help="Fault rates per request, e.g. 500=0.05,502=0.05,503=0.05,429=0.05,hang=0.02,reset=0.02.",
)
@click.option(
    "--latency-ms",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Added to every answer.",
)
@click.option(
    "--hang-ms",
    type=click.IntRange(0),
    default=30_000,
    show_default=True,
    help="How long a 'hang' fault holds the request before a 504.",
)
@click.option(
    "--retry-after",
    "retry_after_s",
    type=click.IntRange(0),
    default=1,
    show_default=True,
    help="Seconds a 429 asks the client to wait.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fault plan.")
@click.option(
    "--shape",
    type=click.Choice(["array", "object"]),
    default="array",
    show_default=True,
    help="Body container the callback accepts.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every request (tokens masked).")
def sandbox(
    host: str,
    port: int,
    tokens: tuple[str, ...],
    forbidden_tokens: tuple[str, ...],
    unknown_ids: tuple[str, ...],
    faults: str,
    latency_ms: int,
    hang_ms: int,
    retry_after_s: int,
    seed: int,
    shape: str,
    verbose: bool,
) -> None:
    """Run a strict local Altegio until SIGTERM or Ctrl-C (see docs/sandbox.md)."""
    from pipeline.config import MIN_SECRET_LENGTH, LoggingSettings
    from pipeline.logs import configure_logging
    from pipeline.sandbox import SandboxConfig, SandboxConfigError, parse_fault_spec
    from pipeline.sandbox.app import build_sandbox_app
    from pipeline.sandbox.runner import runner_options

    for token in (*tokens, *forbidden_tokens):
        logsafe.register_secret(token)
    # The same UTC format as every other smsrecon process, so logs side by side line up.
    configure_logging(LoggingSettings(level="INFO" if verbose else "WARNING"))
    if verbose:
        logging.getLogger("aiohttp.access").setLevel(logging.INFO)  # the request lines
    try:
        config = SandboxConfig(
            tokens=tokens,
            forbidden_tokens=forbidden_tokens,
            unknown_ids=frozenset(unknown_ids),
            faults=parse_fault_spec(faults),
            latency_ms=latency_ms,
            hang_ms=hang_ms,
            retry_after_s=retry_after_s,
            seed=seed,
            shape=shape,  # type: ignore[arg-type]
        )
    except SandboxConfigError as exc:
        fail(f"sandbox: {exc}", EXIT_USAGE)
    if any(len(token) < MIN_SECRET_LENGTH for token in (*tokens, *forbidden_tokens)):
        # Masked in every log line, a short token would also be masked inside ordinary
        # words ("x" turns "executed" into "e***ecuted"); never echoed.
        fail(
            f"sandbox: a --token or --forbidden-token is shorter than {MIN_SECRET_LENGTH} "
            "characters; use a longer one",
            EXIT_USAGE,
        )

    def ready(url: str) -> None:
        fault_text = faults.strip() or "none"
        click.echo(
            f"sandbox listening on {url} ({len(tokens)} token(s), shape {shape}, "
            f"faults {fault_text}, latency {latency_ms} ms, seed {seed})"
        )

    serve_in_foreground(
        build_sandbox_app(config), host=host, port=port, on_ready=ready, **runner_options()
    )
    click.echo("sandbox stopped")
