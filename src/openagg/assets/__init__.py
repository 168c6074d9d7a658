"""Files the platform's pages share (widget, console, portal), served at /assets/."""
