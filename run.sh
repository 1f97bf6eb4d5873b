#!/usr/bin/env bash
# Set-up and the two entry points of the README:
#   bash run.sh demo   install, start the local stack, run 200 seeded runs, print gene counts
#   bash run.sh test   install with the test tools, lint, and run the test suite
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

tests() {
    install
    "$VENV/bin/ruff" check .
    "$VENV/bin/python" -m pytest -q "$@"
}

case "${1:-}" in
    demo) demo ;;
    test) shift; tests "$@" ;;
    *) echo "usage: bash run.sh demo|test [pytest args]" >&2; exit 2 ;;
esac
