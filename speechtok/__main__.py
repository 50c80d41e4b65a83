from speechtok.cli import main

raise SystemExit(main())
