#!/bin/sh
# The part of the official redis image's entrypoint that compose.stack.yaml relies on: options or a .conf
# file alone mean redis-server, and the server starts with protected mode off. The official image compiles
# that default in (in a container the port is reachable only where it is published); a stock Debian build
# cannot, so it is passed here, after the config file and before your options: options override it, a
# config file's `protected-mode` does not (the one difference from the official image).
set -eu

case "${1:-}" in
    -*|*.conf) set -- redis-server "$@" ;;
esac

if [ "${1:-}" = redis-server ]; then
    shift
    conf=
    case "${1:-}" in
        ''|-*) ;;
        *) conf=$1; shift ;;
    esac
    set -- redis-server ${conf:+"$conf"} --protected-mode no "$@"
fi

# Files only the server's user can read, as the official image does when the umask is the default.
umask 0077
exec "$@"
