"""What handlers share: the error-carrying exception."""


class Reply(Exception):
    """Answer the client with this numeric (after its nick) and stop handling the command."""

    def __init__(self, numeric: str, *params: str) -> None:
        super().__init__(numeric, *params)
        self.numeric = numeric
        self.params = params


def split_targets(text: str) -> list[str]:
    """A comma-separated target list, without the empty items a stray comma leaves."""
    return [t for t in text.split(",") if t]
