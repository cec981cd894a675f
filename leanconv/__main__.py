"""``python -m leanconv`` is the ``leanconv`` command."""

from leanconv.cli import main

raise SystemExit(main())
