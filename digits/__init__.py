"""The digit reader: the network as the lesson builds it (model), trained repeatably (repeatable,
training), its scores summed up (summary), and the digit-predict command (predict). It stands
on the pipeline package and knows nothing of the course."""
