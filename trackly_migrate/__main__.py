from trackly_migrate.cli import main

main()
