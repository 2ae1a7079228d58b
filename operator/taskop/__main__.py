from taskop.cli import main

main()
