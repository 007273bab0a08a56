"""One ES module per page of the dashboard (a package only so that installs carry them)."""
