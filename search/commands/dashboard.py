"""``search dashboard``: Pareto fronts, trials and models of a study in the browser (local, read-only)."""

from __future__ import annotations

from pathlib import Path

from search.commands.options import add_study_options


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="serve the Pareto dashboard on a local web page",
        description="Serve a read-only web page with the study's Pareto fronts, trials and models. "
        "It works offline and refreshes while a search runs.",
    )
    add_study_options(parser, "study to open first")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; the page has no login)")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0 picks a free one)")
    parser.set_defaults(run=run)


def run(args) -> int:
    from studies.web import serve

    check_host(args.host)
    serve(args.storage, study=args.study, host=args.host, port=args.port)
    return 0


def check_host(host: str) -> None:
    """ValueError unless ``host`` is a name, an unspecified address (0.0.0.0, ::) or an address of this
    machine: read from /proc/net, not by binding it (a bind that fails says why, with the kernel's words)."""
    import ipaddress

    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return  # a name: resolving it here would ask DNS, the bind resolves it once
    local = local_addresses()
    if address.is_unspecified or address.is_loopback or local is None or address in local:
        return
    raise ValueError(f"--host {host}: not an address of this machine; use 127.0.0.1 (this machine only), "
                     "0.0.0.0 (every interface) or one of: " + ", ".join(sorted(map(str, local))))


def local_addresses() -> set | None:
    """This machine's IPv4 and IPv6 addresses from Linux's /proc/net (None where it has none)."""
    import ipaddress

    try:
        trie = Path("/proc/net/fib_trie").read_text().splitlines()
        inet6 = Path("/proc/net/if_inet6").read_text().splitlines() if Path("/proc/net/if_inet6").exists() else []
    except OSError:
        return None
    found = {ipaddress.ip_address(line.split()[-1]) for line, below in zip(trie, trie[1:])
             if "/32 host LOCAL" in below and line.strip().startswith("|--")}
    found |= {ipaddress.IPv6Address(int(line.split()[0], 16)) for line in inet6 if line.split()}
    return found
