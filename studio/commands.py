"""Command palette entries (ctrl+p): the current screen's actions that can run now."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class ScreenActions(Provider):
    """Offers the bindings of the screen the palette was opened over, minus those its
    ``check_action`` greys out, so the palette never offers what would do nothing."""

    def _commands(self) -> list[tuple[str, str, str]]:
        screen = self.screen
        out = []
        for key, binding in screen._bindings.key_to_bindings.items():
            for b in binding:
                action = b.action
                if not b.description or action.startswith("app."):
                    continue
                name = action.split("(")[0]
                if screen.check_action(name, ()) is not True:
                    continue
                out.append((b.description, b.tooltip or "", action))
        seen, unique = set(), []
        for entry in out:
            if entry[0] not in seen:
                seen.add(entry[0])
                unique.append(entry)
        return unique

    async def discover(self) -> Hits:
        for title, help_text, action in self._commands():
            yield DiscoveryHit(title, partial(self.screen.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, action in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self.screen.run_action, action), help=help_text)
