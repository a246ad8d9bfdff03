from calshare.cli import main

raise SystemExit(main())
