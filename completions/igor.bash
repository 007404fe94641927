# bash completion for igor. Written by `python -m igor_cli.tab generate`: do not edit.
# Install: copy to /usr/share/bash-completion/completions/igor (or
# ~/.local/share/bash-completion/completions/igor), or source it from ~/.bashrc.

_igor_completion() {
    local cur=${COMP_WORDS[COMP_CWORD]} line=${COMP_LINE:0:COMP_POINT} item
    # igor gets the line itself, which it splits as the shell does: bash's own
    # words are also cut at = and :. A new word not yet typed must still count.
    if [[ -z $cur ]]; then
        line+="''"
    fi
    COMPREPLY=()
    while IFS= read -r item; do
        [[ -n $item ]] || continue
        # Inside an opened quote bash closes the quote itself; elsewhere a name
        # with spaces must be escaped to stay one word.
        if [[ $cur != [\"\']* ]]; then
            printf -v item %q "$item"
        fi
        COMPREPLY+=("$item")
    done < <(env COMP_WORDS="$line" COMP_CWORD=-1 _IGOR_COMPLETE=complete_bash igor 2>/dev/null)
}

complete -F _igor_completion igor
