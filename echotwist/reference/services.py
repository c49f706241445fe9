"""
Which service the system's services database names for each port in a range.

The course's "simple" exercise. Run it with::

    python -m echotwist.reference.services [PORT | NAME | LOWER UPPER]
        [--protocol tcp|udp]

With no argument it prints the well-known ports (0-1023) that have a name
(port 7, C{echo}, among them); with one number, that port; with a name, the
port of that service (as C{getent services NAME} does); with two numbers,
the ports from the first to the second.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
from collections.abc import Sequence

from echotwist.cli import version_line
from echotwist.ports import not_a_port

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
        raise ValueError(f"{name}: {not_a_port(value)}")


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


def port_of(name: str, protocol: str = "tcp") -> int:
    """
    Look up the port of a service by name (or alias), as C{getent services}
    does.

    @param name: The service's name, such as C{"echo"}.
    @param protocol: C{"tcp"} or C{"udp"}.
    @return: Its port.
    @raise LookupError: If the services database has no such service.
    @raise ValueError: If C{protocol} is neither C{"tcp"} nor C{"udp"}.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be 'tcp' or 'udp', not {protocol!r}")
    try:
        return socket.getservbyname(name, protocol)
    except (OSError, UnicodeError):
        # Shown as typed, even if it is not valid in the system's encoding.
        shown = os.fsencode(name).decode("ascii", "backslashreplace")
        raise LookupError(f"no {protocol} service named '{shown}'") from None


def _port_argument(text: str) -> int:
    """
    Read a port number from the command line.

    @param text: The argument as typed.
    @return: The port, 0 to 65535.
    @raise ValueError: If C{text} is not such a number.
    """
    try:
        port = int(text)
    except ValueError:
        # One word that is not a number is a name; in a range, it is an error.
        raise ValueError(f"a range is two port numbers, not {text!r}") from None
    if not MIN_PORT <= port <= MAX_PORT:
        raise ValueError(not_a_port(text))
    return port


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
    Print the services of a port, a range of ports or a service name, from
    the command line.

    Bad arguments print a usage error and exit with status 2 (argparse).

    @param argv: The arguments, without the program name; C{None} means
        C{sys.argv[1:]}.
    @return: The exit status: 0, or 1 for a name the database does not have.
    """
    parser = argparse.ArgumentParser(
        prog="echotwist-services",
        usage=(
            "%(prog)s [-h] [--version] [--protocol {tcp,udp}] "
            "[PORT | NAME | LOWER UPPER]"
        ),
        description=(
            "Name the services the system knows: of the well-known ports "
            f"({MIN_PORT}-{WELL_KNOWN_UPPER}) with no argument, of PORT, of "
            "the ports from LOWER to UPPER, or the port of the service NAME."
        ),
    )
    parser.add_argument(
        "ports",
        nargs="*",
        metavar="PORT | NAME | LOWER UPPER",
        help="a port number, a service name, or two port numbers",
    )
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="tcp",
        help="the services' protocol (default: %(default)s)",
    )
    parser.add_argument(
        "--version", action="version", version=version_line(parser.prog)
    )
    arguments = parser.parse_args(argv)
    protocol = arguments.protocol
    words = arguments.ports
    if len(words) > 2:
        parser.error("give at most two arguments: PORT, NAME or LOWER UPPER")
    if len(words) == 1 and not words[0].lstrip("-").isdigit():
        try:
            port = port_of(words[0], protocol)
        except LookupError as e:
            print(f"{parser.prog}: {e.args[0]}", file=sys.stderr)
            return 1
        print(format_table(list_services(port, port, protocol), protocol))
        return 0
    try:
        bounds = [_port_argument(word) for word in words]
        lower, upper = (bounds[0], bounds[-1]) if bounds else (0, WELL_KNOWN_UPPER)
        services = list_services(lower, upper, protocol)
    except ValueError as e:
        parser.error(str(e))
    if services:
        print(format_table(services, protocol))
    elif lower == upper:
        print(f"No {protocol} service known for port {lower}.")
    else:
        print(f"No {protocol} services known for ports {lower}-{upper}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
