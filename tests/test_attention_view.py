"""The attention heatmap as text: token labels on both axes, cropping to the width, the
mean over heads, and colours that grow with the weight."""

from __future__ import annotations

from studio.widgets.attention import MEAN, colour, heatmap_text, select_map, show_piece


def test_heatmap_labels_rows_and_columns_and_colours_cells():
    m = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]]
    text = heatmap_text(m, ["a", " ", "b"], ["a", " ", "b"], width=40)
    lines = text.plain.splitlines()
    assert lines[0].split() == ["a", "␣", "b"]  # one header row: single-character tokens
    assert lines[0] == "  a   ␣   b   "  # few tokens: wide cells (4 characters)
    assert [line[0] for line in lines[1:]] == ["a", "␣", "b"]
    assert heatmap_text(m, ["a", " ", "b"], ["a", " ", "b"], width=9).plain.splitlines()[0] == "  a ␣ b "
    styles = [str(span.style) for span in text.spans if "on #" in str(span.style)]
    assert len(styles) == 9 and styles[0] == f"on {colour(1.0)}" and styles[1] == f"on {colour(0.0)}"


def test_word_labels_are_written_downwards_and_long_texts_keep_their_end():
    rows = ["le", "chat"]
    cols = ["the", "cat"]
    text = heatmap_text([[0.9, 0.1], [0.2, 0.8]], rows, cols, width=40)
    header = text.plain.splitlines()[:3]
    assert [h.split() for h in header] == [["t", "c"], ["h", "a"], ["e", "t"]]
    many = [str(i % 10) for i in range(60)]
    square = [[1.0 / (i + 1) if j <= i else 0.0 for j in range(60)] for i in range(60)]
    cropped = heatmap_text(square, many, many, width=30)
    assert "left out to fit" in cropped.plain
    assert len(cropped.plain.splitlines()[0]) <= 30


def test_mean_over_heads_and_visible_pieces():
    maps = [[[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]]]
    assert select_map(maps, 0, MEAN) == [[0.5, 0.5], [0.5, 0.5]]
    assert select_map(maps, 0, 1) == [[0.0, 1.0], [1.0, 0.0]]
    assert show_piece("\n") == "⏎" and show_piece("  ") == "␣␣" and show_piece("word") == "word"
    assert colour(0.0) != colour(0.25) != colour(1.0)
