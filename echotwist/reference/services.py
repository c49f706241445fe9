"""
Which service the system's services database names for each port in a range.

The course's "simple" exercise. Run it with::

    python -m echotwist.reference.services [LOWER [UPPER]] [--protocol tcp|udp]

It prints, for instance, C{7  echo} among the well-known ports (0-1023).
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
from collections.abc import Sequence

MIN_PORT = 0
MAX_PORT = 65535
WELL_KNOWN_UPPER = 1023  # ports 0-1023 are the "well-known" ones
PROTOCOLS = ("tcp", "udp")


def _check_port(name: str, value: int) -> None:
    """
    Check that C{value} is a port number.

    @param name: What the value is, for the error message.
    @param value: The value to check.
    @raise TypeError: If C{value} is not an C{int}; C{bool}, though a
        subclass of C{int}, is refused too: C{True} is no port number.
    @raise ValueError: If C{value} is outside 0-65535.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer port number, not {value!r}")
    if not MIN_PORT <= value <= MAX_PORT:
        raise ValueError(
            f"{name} must be a port number ({MIN_PORT}-{MAX_PORT}), not {value!r}"
        )


def list_services(
    lower: int = MIN_PORT, upper: int = WELL_KNOWN_UPPER, protocol: str = "tcp"
) -> dict[int, str]:
    """
    Name the services of the ports from C{lower} to C{upper}, both included.

    Names come from C{socket.getservbyport}, that is from the system's
    services database (C{/etc/services} on Unix). Ports it has no name for
    are left out.

    @param lower: The first port; defaults to 0.
    @param upper: The last port; defaults to 1023, the end of the well-known
        ports.
    @param protocol: C{"tcp"} or C{"udp"}.
    @return: The service name of each port that has one, by port.
    @raise TypeError: If a bound is not an C{int}.
    @raise ValueError: If a bound is outside 0-65535, C{lower} is greater than
        C{upper}, or C{protocol} is neither C{"tcp"} nor C{"udp"}.
    """
    _check_port("lower", lower)
    _check_port("upper", upper)
    if lower > upper:
        raise ValueError(f"lower ({lower}) is greater than upper ({upper})")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be 'tcp' or 'udp', not {protocol!r}")
    services = {}
    for port in range(lower, upper + 1):
        # getservbyport raises OSError for a port it has no name for.
        with contextlib.suppress(OSError):
            services[port] = socket.getservbyport(port, protocol)
    return services


def format_table(services: dict[int, str], protocol: str) -> str:
    """
    Lay out services as a table: a header, then one port and name a line.

    @param services: Service names by port, as L{list_services} returns them.
    @param protocol: The protocol, for the header.
    @return: The table, ports right-aligned, without a final newline.
    """
    header = ("PORT", f"SERVICE ({protocol})")
    width = max([len(header[0])] + [len(str(port)) for port in services])
    lines = [f"{header[0]:>{width}}  {header[1]}"]
    lines += [f"{port:>{width}}  {name}" for port, name in sorted(services.items())]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """
    Print the services of a range of ports, from the command line.

    Bad arguments print a usage error and exit with status 2 (argparse).

    @param argv: The arguments, without the program name; C{None} means
        C{sys.argv[1:]}.
    @return: The exit status, 0.
    """
    parser = argparse.ArgumentParser(
        prog="echotwist-services",
        description="List the services the system knows for a range of ports.",
    )
    parser.add_argument(
        "lower",
        nargs="?",
        type=int,
        default=MIN_PORT,
        metavar="LOWER",
        help="first port (default: %(default)s)",
    )
    parser.add_argument(
        "upper",
        nargs="?",
        type=int,
        default=WELL_KNOWN_UPPER,
        metavar="UPPER",
        help="last port (default: %(default)s)",
    )
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="tcp",
        help="(default: %(default)s)",
    )
    arguments = parser.parse_args(argv)
    try:
        services = list_services(arguments.lower, arguments.upper, arguments.protocol)
    except ValueError as e:
        parser.error(str(e))
    if services:
        print(format_table(services, arguments.protocol))
    else:
        print(
            f"No {arguments.protocol} services known for ports "
            f"{arguments.lower}-{arguments.upper}."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
