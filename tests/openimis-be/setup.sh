#!/usr/bin/env bash
# The real openIMIS backend (tests/third_party/openimis-be/, upstream's assembly unmodified,
# plus the PyPI modules pinned in requirements.txt beside this script), built and cached
# under the cargo target dir so that only the first run pays for it:
#
#   setup.sh venv                 the Python venv (key: requirements.txt, the python3 used);
#                                 prints the venv's python
#   setup.sh assembly             the assembly with our settings additions applied (key: the
#                                 upstream copy, openimis.json, settings_additions.py); prints
#                                 the directory holding manage.py
#   setup.sh manage DSN ARGS...   runs `manage.py ARGS...` against DSN (MODE=DEV, scheduled
#                                 jobs off, object cache off): the GraphQL peer reuses this
#   setup.sh migrate DSN          `manage.py migrate` on a database loaded with the scripts
#   setup.sh dump-path DATA       where the dump of the migrated DATA (empty|demo) database is
#                                 cached (key: the venv, assembly and scripts keys, pg_dump's
#                                 version, $migrate_env_version); prints it, whether it exists
#   setup.sh dump DATA DSN        migrates DSN (the scripts and, for demo, demo_db.sql already
#                                 loaded) and caches its dump at dump-path, unless cached
#                                 already; prints the path
#
# DSN: libpq keywords separated by spaces (host= port= user= dbname= [password=]), as the test
# harness writes them. PG_BIN: the PostgreSQL bin directory for pg_dump (default: the newest
# /usr/lib/postgresql/*/bin). Cache: $OPENIMIS_BE_CACHE, else $CARGO_TARGET_DIR/openimis-be,
# else <repo>/target/openimis-be. Concurrent runs serialise on a lock file there.
#
# We never edit the upstream copy: `assembly` copies it and inserts settings_additions.py after
# settings.py's `load_dotenv()` (core 1.11 reads IS_TESTING and CACHE_OBJECT_* while
# settings.py is importing the apps) and replaces openimis.json with ours (the 19 modules
# the legacy insuree/policy/contribution/payment stack needs; upstream's lists 40 from git).
#
# Needs python3 with venv (Debian: python3 python3-venv), and to build pyminizip (no wheel on
# PyPI; openimis-be-tools imports it; it bundles its zlib) a C compiler and the Python headers
# (Debian: gcc python3-dev).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
upstream="$repo/tests/third_party/openimis-be"
scripts="$repo/tests/third_party/openimis-db"
cache="${OPENIMIS_BE_CACHE:-${CARGO_TARGET_DIR:-$repo/target}/openimis-be}"
# Part of the dump's key: bump it when what run_manage or build_dump does to the database
# changes (the rest of this script can change without re-migrating).
migrate_env_version=1
mkdir -p "$cache"

die() {
  echo "openimis-be setup: $*" >&2
  exit 1
}

key_of() { sha256sum | cut -c1-16; }

python_bin() {
  command -v python3 >/dev/null 2>&1 ||
    die "python3 not found: install it (Debian: apt-get install -y python3 python3-venv python3-dev gcc)"
  python3 -c 'import venv, ensurepip' 2>/dev/null ||
    die "python3 has no working venv/ensurepip: install it (Debian: apt-get install -y python3-venv)"
  command -v python3
}

venv_key() {
  local py
  py="$(python_bin)"
  {
    cat "$here/requirements.txt"
    "$py" -c 'import sys; print(sys.version)'
    readlink -f "$py"
  } | key_of
}

# Builds cache entry ENTRY (a path under $cache) with BUILDER ENTRY unless DONE exists (the
# builder makes DONE last, so an interrupted build is redone, never used); double-checked
# under an exclusive lock on the cache so concurrent runs build it once. Then deletes the
# entries a changed key left behind (same name up to the key: ENTRY is PREFIX-KEY...).
build_once() {
  local entry="$1" done="$2" builder="$3" prefix="$4"
  [ -e "$done" ] && return
  exec 9>"$cache/lock"
  flock 9
  if [ ! -e "$done" ]; then
    "$builder" "$entry"
    find "$cache" -maxdepth 1 -name "$prefix-*" ! -name "$(basename "$entry")" -exec rm -rf {} +
  fi
  exec 9>&-
}

build_venv() {
  local dir="$1" py
  py="$(python_bin)"
  # pyminizip is built from source: say what is missing before pip fails deep inside.
  "$py" -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' ||
    die "no Python headers to build pyminizip: install them (Debian: apt-get install -y python3-dev)"
  command -v cc >/dev/null 2>&1 || die "no C compiler to build pyminizip: install one (Debian: apt-get install -y gcc)"
  echo "openimis-be setup: building the venv $dir (pip, about 2 minutes)" >&2
  # Built in place: a venv's scripts name its own path, it cannot be moved afterwards.
  rm -rf "$dir"
  "$py" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2 ||
    die "pip install -r $here/requirements.txt failed (see above)"
  touch "$dir/.complete"
}

ensure_venv() {
  local dir
  dir="$cache/venv-$(venv_key)"
  build_once "$dir" "$dir/.complete" build_venv venv
  echo "$dir/bin/python"
}

assembly_key() {
  {
    (cd "$upstream" && find . -type f ! -name '*.pyc' | LC_ALL=C sort | xargs -d '\n' sha256sum)
    sha256sum "$here/openimis.json" "$here/settings_additions.py"
  } | key_of
}

build_assembly() {
  local dir="$1" settings
  rm -rf "$dir.tmp"
  cp -r "$upstream" "$dir.tmp"
  chmod -R u+w "$dir.tmp"
  cp "$here/openimis.json" "$dir.tmp/openimis.json"
  settings="$dir.tmp/openIMIS/openIMIS/settings.py"
  grep -qx 'load_dotenv()' "$settings" || die "no 'load_dotenv()' line in $settings to insert our settings after"
  awk -v add="$here/settings_additions.py" '
    { print }
    $0 == "load_dotenv()" && !done { print ""; while ((getline l < add) > 0) print l; done = 1 }
  ' "$settings" >"$settings.new"
  mv "$settings.new" "$settings"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
}

ensure_assembly() {
  local dir
  dir="$cache/assembly-$(assembly_key)"
  build_once "$dir" "$dir/openIMIS/manage.py" build_assembly assembly
  echo "$dir/openIMIS"
}

pg_bin() {
  if [ -n "${PG_BIN:-}" ]; then
    echo "$PG_BIN"
    return
  fi
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
  [ -n "$d" ] || die "PostgreSQL client tools not found (no /usr/lib/postgresql/*/bin): set PG_BIN or install postgresql"
  echo "$d"
}

# Splits a keyword DSN into PSQL_DB_* variables for settings.py.
dsn_env() {
  local word k v
  PSQL_DB_HOST=127.0.0.1 PSQL_DB_PORT=5432 PSQL_DB_USER=postgres PSQL_DB_NAME='' PSQL_DB_PASSWORD=''
  for word in $1; do
    k="${word%%=*}"
    v="${word#*=}"
    case "$k" in
      host) PSQL_DB_HOST="$v" ;;
      port) PSQL_DB_PORT="$v" ;;
      user) PSQL_DB_USER="$v" ;;
      dbname) PSQL_DB_NAME="$v" ;;
      password) PSQL_DB_PASSWORD="$v" ;;
      *) ;;
    esac
  done
  [ -n "$PSQL_DB_NAME" ] || die "no dbname= in DSN '$1'"
  export PSQL_DB_HOST PSQL_DB_PORT PSQL_DB_USER PSQL_DB_NAME PSQL_DB_PASSWORD
}

run_manage() {
  local dsn="$1" py dir
  shift
  py="$(ensure_venv)"
  dir="$(ensure_assembly)"
  dsn_env "$dsn"
  # SCHEDULER_AUTOSTART is read as a string: any value, even "False", starts the jobs.
  unset SCHEDULER_AUTOSTART
  export DB_DEFAULT=postgresql MODE=DEV ASYNC=False SITE_ROOT="${SITE_ROOT:-api}"
  export CACHE_OBJECT_DEFAULT=False IS_TESTING="${IS_TESTING:-False}"
  export DJANGO_LOG_LEVEL="${DJANGO_LOG_LEVEL:-WARNING}" DJANGO_LOG_HANDLER=console DJANGO_DB_LOG_HANDLER=console
  # openimisconf.py reads ../openimis.json relative to the working directory.
  cd "$dir"
  "$py" manage.py "$@"
}

dump_path() {
  local data="$1" key
  case "$data" in
    empty | demo) ;;
    *) die "data must be empty or demo, not '$data'" ;;
  esac
  key="$({
    venv_key
    assembly_key
    (cd "$scripts" && LC_ALL=C sha256sum ./*.sql)
    "$(pg_bin)/pg_dump" --version
    echo "migrate environment $migrate_env_version"
  } | key_of)"
  echo "$cache/migrated-$data-$key.dump"
}

# For build_once: migrates $dump_dsn and dumps it to $1.
build_dump() {
  local path="$1" started=$SECONDS
  echo "openimis-be setup: manage.py migrate on $dump_data (1 to 3 minutes)" >&2
  (run_manage "$dump_dsn" migrate --no-input >&2) || die "manage.py migrate failed on '$dump_dsn' (see above)"
  dsn_env "$dump_dsn"
  PGPASSWORD="$PSQL_DB_PASSWORD" "$(pg_bin)/pg_dump" -Fc --no-owner --no-privileges \
    -h "$PSQL_DB_HOST" -p "$PSQL_DB_PORT" -U "$PSQL_DB_USER" -d "$PSQL_DB_NAME" -f "$path.tmp" ||
    die "pg_dump of '$dump_dsn' failed"
  mv "$path.tmp" "$path"
  echo "openimis-be setup: migrated and dumped $dump_data in $((SECONDS - started)) s" >&2
}

make_dump() {
  local path
  dump_data="$1" dump_dsn="$2"
  path="$(dump_path "$dump_data")"
  # Built before taking the lock for the dump (build_once does not nest).
  ensure_venv >/dev/null
  ensure_assembly >/dev/null
  build_once "$path" "$path" build_dump "migrated-$dump_data"
  echo "$path"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  venv) ensure_venv ;;
  assembly) ensure_assembly ;;
  manage)
    [ $# -ge 2 ] || die "usage: setup.sh manage DSN ARGS..."
    run_manage "$@"
    ;;
  migrate)
    [ $# -eq 1 ] || die "usage: setup.sh migrate DSN"
    run_manage "$1" migrate --no-input
    ;;
  dump-path)
    [ $# -eq 1 ] || die "usage: setup.sh dump-path empty|demo"
    dump_path "$1"
    ;;
  dump)
    [ $# -eq 2 ] || die "usage: setup.sh dump empty|demo DSN"
    make_dump "$1" "$2"
    ;;
  *) die "usage: setup.sh venv|assembly|manage|migrate|dump-path|dump (see the comment at the top)" ;;
esac
