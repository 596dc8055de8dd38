from caffedoc.cli import main

main()
