"""Pictures of runs: frame data (no matplotlib), matplotlib panels and figures, plotly figures, exact-partition
figures, and the video and figure writers."""
