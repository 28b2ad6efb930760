#!/usr/bin/env bash
# Start a throw-away PostgreSQL server for the database tests (idempotent).
#
# Usage (either form; both export EMERFLOW_TEST_POSTGRES_URL in the calling shell):
#     source .ci/postgres.sh
#     eval "$(bash .ci/postgres.sh)"
# then:  .venv/bin/pytest tests/test_db_*.py
#
# What it does:
#   * installs the Debian `postgresql` package when no server binaries are found (needs root or
#     sudo; non-interactive, so it works with CI=true and no stdin);
#   * initializes a data directory under /tmp (default /tmp/emerflow-pg-$PORT) owned by the
#     `postgres` user when run as root (initdb refuses root), else by the current user;
#   * starts the server with pg_ctl on 127.0.0.1:$PORT only (default port 54329, so it never
#     clashes with a system cluster on 5432), tuned for tests (fsync off: data is throw-away);
#   * creates the database (default emerflow_test) when missing;
#   * prints ONE line on stdout:  export EMERFLOW_TEST_POSTGRES_URL=postgresql+psycopg://...
#     (all progress messages go to stderr).
# Running it again while the server is up just prints the line again.
#
# Settings (environment): EMERFLOW_PG_PORT, EMERFLOW_PG_DATA, EMERFLOW_PG_DB,
# EMERFLOW_PG_PASSWORD (default "emerflow"), PG_BINDIR (directory holding initdb/pg_ctl).
# Stop the server:  pg_ctl -D /tmp/emerflow-pg-54329/data stop   (as the postgres user if root)

_emerflow_pg_main() (
    set -euo pipefail
    port="${EMERFLOW_PG_PORT:-54329}"
    base="${EMERFLOW_PG_DATA:-/tmp/emerflow-pg-${port}}"
    data="${base}/data"
    sock="${base}/run"
    logfile="${base}/postgres.log"
    dbname="${EMERFLOW_PG_DB:-emerflow_test}"
    password="${EMERFLOW_PG_PASSWORD:-emerflow}"
    superuser="postgres"

    say() { echo "[postgres.sh] $*" >&2; }

    find_bindir() {
        if [[ -n "${PG_BINDIR:-}" && -x "${PG_BINDIR}/pg_ctl" ]]; then
            echo "${PG_BINDIR}"; return 0
        fi
        local d
        d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
        if [[ -n "$d" && -x "$d/pg_ctl" && -x "$d/initdb" ]]; then
            echo "$d"; return 0
        fi
        if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
            dirname "$(command -v pg_ctl)"; return 0
        fi
        return 1
    }

    as_root() {
        if [[ $(id -u) -eq 0 ]]; then "$@"
        elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
        else say "need root (or sudo) to install PostgreSQL"; return 1
        fi
    }

    if ! bindir=$(find_bindir); then
        say "PostgreSQL server not found; installing the Debian package 'postgresql'"
        export DEBIAN_FRONTEND=noninteractive
        as_root apt-get update -qq </dev/null >&2
        as_root apt-get install -y -qq --no-install-recommends postgresql </dev/null >&2
        bindir=$(find_bindir) || { say "postgresql installed but initdb/pg_ctl not found"; exit 1; }
    fi
    say "using server binaries in ${bindir}"

    # Run server commands as the postgres user when we are root (initdb/postgres refuse root).
    run_pg() {
        if [[ $(id -u) -eq 0 ]]; then
            if ! id "$superuser" >/dev/null 2>&1; then
                useradd --system --home-dir /var/lib/postgresql --shell /bin/bash "$superuser"
            fi
            runuser -u "$superuser" -- "$@"
        else
            "$@"
        fi
    }
    owner=$([[ $(id -u) -eq 0 ]] && echo "$superuser" || id -un)

    mkdir -p "$base" "$sock"
    [[ $(id -u) -eq 0 ]] && chown "$owner" "$base" "$sock"
    chmod 700 "$base"

    if [[ ! -s "${data}/PG_VERSION" ]]; then
        say "initializing ${data}"
        rm -rf "$data"
        pwfile="${base}/pwfile"
        printf '%s\n' "$password" >"$pwfile"
        [[ $(id -u) -eq 0 ]] && chown "$owner" "$pwfile"
        chmod 600 "$pwfile"
        run_pg "${bindir}/initdb" -D "$data" -U "$superuser" --pwfile="$pwfile" \
            --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >&2 \
            || run_pg "${bindir}/initdb" -D "$data" -U "$superuser" --pwfile="$pwfile" \
                --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C >&2
        rm -f "$pwfile"
    fi

    if run_pg "${bindir}/pg_isready" -q -h 127.0.0.1 -p "$port" 2>/dev/null; then
        say "server already running on 127.0.0.1:${port}"
    else
        # A stale pid file from a killed server would block the start.
        if [[ -f "${data}/postmaster.pid" ]] && ! run_pg "${bindir}/pg_ctl" -D "$data" status >/dev/null 2>&1; then
            rm -f "${data}/postmaster.pid"
        fi
        say "starting server on 127.0.0.1:${port} (log: ${logfile})"
        run_pg "${bindir}/pg_ctl" -D "$data" -l "$logfile" -w -t 60 start -o \
            "-c listen_addresses=127.0.0.1 -p ${port} -c unix_socket_directories=${sock} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
            >&2 || { say "server failed to start; last log lines:"; tail -n 30 "$logfile" >&2 || true; exit 1; }
    fi

    exists=$(run_pg "${bindir}/psql" -h "$sock" -p "$port" -U "$superuser" -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '${dbname}'")
    if [[ "$exists" != "1" ]]; then
        say "creating database ${dbname}"
        run_pg "${bindir}/createdb" -h "$sock" -p "$port" -U "$superuser" "$dbname"
    fi
    echo "export EMERFLOW_TEST_POSTGRES_URL=postgresql+psycopg://${superuser}:${password}@127.0.0.1:${port}/${dbname}"
)

if [[ "${BASH_SOURCE[0]}" != "${0}" ]]; then
    # Sourced: export the variable into the caller's shell, never exit it.
    if _emerflow_pg_line=$(_emerflow_pg_main); then
        eval "$_emerflow_pg_line"
        echo "[postgres.sh] EMERFLOW_TEST_POSTGRES_URL=${EMERFLOW_TEST_POSTGRES_URL}" >&2
    else
        echo "[postgres.sh] failed; EMERFLOW_TEST_POSTGRES_URL not set" >&2
    fi
    unset _emerflow_pg_line
    unset -f _emerflow_pg_main
    return 0 2>/dev/null || true
else
    _emerflow_pg_main
fi
