from avssl.cli import main

main()
