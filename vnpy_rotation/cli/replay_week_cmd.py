"""placeholder"""
def add_parsers(commands, home, parse_date):
    pass
