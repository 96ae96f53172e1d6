from tminus.cli import main

main()
