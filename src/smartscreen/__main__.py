from smartscreen.cli import main

raise SystemExit(main())
