#!/usr/bin/env bash
# Set-up and the two entry points of the README:
#   bash run.sh demo   install, start the local stack, run 200 seeded runs, print gene counts
#   bash run.sh test   install with the test tools (and Debian's chromium when missing),
#                      lint, and run the test suite
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}

install() {
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[test]"
}

demo() {
    install
    local gj="$VENV/bin/genejobs" data="${GENEJOBS_HOME:-$HOME/.genejobs}/demo"
    "$gj" up --detach
    "$gj" datasets demo --out "$data/demo_expression.csv"
    "$gj" datasets add "$data/demo_expression.csv" --label tissue --id-col sample_id --name demo
    "$gj" importance demo --model lr --runs 200 --wait
    "$gj" genes count --dataset demo --model lr --top 20 --limit 25 --plot "$data/gene_counts.png"
    echo
    echo "plot: $data/gene_counts.png"
    echo "the stack is still running: explore the results at http://127.0.0.1:${GENEJOBS_EXPLORER_PORT:-5556}/,"
    echo "watch it in Flower (user genejobs, password in ${GENEJOBS_HOME:-$HOME/.genejobs}/flower.credentials),"
    echo "query it with '$gj sql', stop it with '$gj down'"
}

browser() {
    # The explorer's tests drive a real headless browser: Debian's chromium.
    command -v chromium >/dev/null 2>&1 && return
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if ! command -v apt-get >/dev/null 2>&1 || { [ -n "$sudo" ] && ! command -v sudo >/dev/null 2>&1; }; then
        echo "run.sh: the explorer's tests need Debian's chromium; install it (apt-get install chromium) and run again" >&2
        exit 1
    fi
    echo "installing Debian's chromium for the explorer's tests" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
}

tests() {
    install
    browser
    "$VENV/bin/ruff" check .
    "$VENV/bin/python" -m pytest -q "$@"
}

case "${1:-}" in
    demo) demo ;;
    test) shift; tests "$@" ;;
    *) echo "usage: bash run.sh demo|test [pytest args]" >&2; exit 2 ;;
esac
