fn main() { commands::placeholder(); }
