# Source me from bash or zsh, from any folder:  source path/to/env.sh
# Activates .venv (if present), puts src/ on PYTHONPATH, sets EXPERIMENTS_ROOT (unless already
# set) and defines: setexp NAME, setrun NAME, setup, initrun [OPTIONS], tboard [PORT].
# Sourcing it again changes nothing.

if [ -n "${BASH_VERSION:-}" ]; then
    _template_env_file="${BASH_SOURCE[0]}"
elif [ -n "${ZSH_VERSION:-}" ]; then
    eval '_template_env_file="${(%):-%x}"'
else
    echo "env.sh: source me from bash or zsh" >&2
    return 1
fi
PROJECT_ROOT="$(CDPATH='' cd -- "$(dirname -- "$_template_env_file")" && pwd -P)"
export PROJECT_ROOT
unset _template_env_file

if [ -f "$PROJECT_ROOT/.venv/bin/activate" ] \
    && [ "${VIRTUAL_ENV:-}" != "$PROJECT_ROOT/.venv" ]; then
    . "$PROJECT_ROOT/.venv/bin/activate"
fi

case ":${PYTHONPATH:-}:" in
    *":$PROJECT_ROOT/src:"*) ;;
    *) export PYTHONPATH="$PROJECT_ROOT/src${PYTHONPATH:+:$PYTHONPATH}" ;;
esac

export EXPERIMENTS_ROOT="${EXPERIMENTS_ROOT:-$PROJECT_ROOT/experiments}"

# The venv's python when there is one, else python3 from PATH.
_template_python() {
    if [ -x "$PROJECT_ROOT/.venv/bin/python" ]; then
        "$PROJECT_ROOT/.venv/bin/python" "$@"
    else
        python3 "$@"
    fi
}

setexp() {
    if [ $# -ne 1 ] || [ -z "$1" ]; then
        echo "usage: setexp NAME   (sets CURRENT_EXP, the experiment initrun uses)" >&2
        return 2
    fi
    export CURRENT_EXP="$1"
    echo "experiment: $CURRENT_EXP"
}

setrun() {
    if [ $# -ne 1 ] || [ -z "$1" ]; then
        echo "usage: setrun NAME   (sets CURRENT_RUN, the run initrun uses)" >&2
        return 2
    fi
    export CURRENT_RUN="$1"
    echo "run: $CURRENT_RUN"
}

setup() {
    echo "experiment: ${CURRENT_EXP:-(not set: setexp NAME)}"
    echo "run:        ${CURRENT_RUN:-(not set: setrun NAME)}"
    echo "root:       $EXPERIMENTS_ROOT"
}

initrun() {
    if [ -z "${CURRENT_EXP:-}" ] || [ -z "${CURRENT_RUN:-}" ]; then
        echo "usage: initrun [-c NAME] [--set key=value ...]  (after setexp NAME; setrun NAME)" >&2
        return 2
    fi
    _template_python "$PROJECT_ROOT/src/01_initialize.py" -e "$CURRENT_EXP" -r "$CURRENT_RUN" "$@"
}

tboard() {
    if [ $# -gt 1 ] || { [ $# -eq 1 ] && case "$1" in ''|*[!0-9]*) true ;; *) false ;; esac; }
    then
        echo "usage: tboard [PORT]   (TensorBoard over \$EXPERIMENTS_ROOT on 127.0.0.1)" >&2
        return 2
    fi
    if ! command -v tensorboard >/dev/null 2>&1; then
        echo "tboard: tensorboard not found; run: pip install -r $PROJECT_ROOT/requirements.txt" >&2
        return 1
    fi
    if [ $# -eq 1 ]; then
        tensorboard --logdir "$EXPERIMENTS_ROOT" --host 127.0.0.1 --port "$1"
    else
        tensorboard --logdir "$EXPERIMENTS_ROOT" --host 127.0.0.1
    fi
}
