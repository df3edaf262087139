#!/usr/bin/env bash
# Put a .gitkeep into every empty folder under experiments/, data/ and config/ of this repo, so
# that git keeps the folders. Works from any folder and with names holding spaces; idempotent.
#   ./keep_exp.sh            create the missing .gitkeep files
#   ./keep_exp.sh --dry-run  only list what it would create
set -euo pipefail

usage() { echo "usage: keep_exp.sh [--dry-run]"; }

dry_run=0
case $# in
    0) ;;
    1) case "$1" in
           --dry-run) dry_run=1 ;;
           -h|--help) usage; exit 0 ;;
           *) usage >&2; exit 2 ;;
       esac ;;
    *) usage >&2; exit 2 ;;
esac

repo="$(CDPATH='' cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
count=0
for top in experiments data config; do
    [ -d "$repo/$top" ] || continue
    while IFS= read -r -d '' folder; do
        count=$((count + 1))
        if [ "$dry_run" -eq 1 ]; then
            echo "would create ${folder#"$repo"/}/.gitkeep"
        else
            : > "$folder/.gitkeep"
            echo "created ${folder#"$repo"/}/.gitkeep"
        fi
    done < <(find "$repo/$top" -type d -empty -print0)
done

if [ "$count" -eq 0 ]; then
    echo "nothing to do: no empty folder under experiments/, data/ or config/"
fi
