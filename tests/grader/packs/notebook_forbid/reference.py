answer = 2.5
