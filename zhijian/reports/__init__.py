"""Report files: Excel workbooks of the rollup, the alert wall and the scoreboard."""
