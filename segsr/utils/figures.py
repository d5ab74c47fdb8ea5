"""Pictures written to files.

Figures are built as ``matplotlib.figure.Figure`` objects, not through pyplot: they need no display
and no backend choice, and leave no global state to close.
"""

from pathlib import Path

from matplotlib.figure import Figure

from segsr.utils.files import atomic_path


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> None:
    """Lay out and write the figure; a run killed meanwhile leaves no half-written picture under the real name."""
    fig.tight_layout()
    with atomic_path(Path(path)) as partial:
        fig.savefig(partial, dpi=dpi)
