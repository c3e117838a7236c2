from apikeys_local.cli import main

raise SystemExit(main())
