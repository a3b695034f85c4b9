"""Operations over the layers below: strategy versions and their aliases, release checks."""
