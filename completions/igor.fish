# fish completion for igor. Written by `python -m igor_cli.tab generate`: do not edit.
# Install: copy to ~/.config/fish/completions/igor.fish.

function __igor_complete
    set -lx _IGOR_COMPLETE complete_fish
    set -lx _TYPER_COMPLETE_FISH_ACTION get-args
    set -lx _TYPER_COMPLETE_ARGS (commandline -cp)
    # In --stack=NAME fish matches the whole word: candidates must start with --stack= too.
    set -l option (string match -r -- '^--?[^=]+=' (commandline -ct))
    # One candidate a line, its help after a tab.
    for candidate in (igor 2>/dev/null)
        printf '%s%s\n' "$option" "$candidate"
    end
end

# igor takes no file names: never offer them instead.
complete --command igor --no-files --arguments '(__igor_complete)'
