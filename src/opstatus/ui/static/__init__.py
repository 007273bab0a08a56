"""The dashboard's HTML, CSS and ES modules (a package only so that installs carry them)."""
