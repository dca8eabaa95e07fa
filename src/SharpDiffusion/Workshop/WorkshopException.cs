namespace SharpDiffusion.Workshop;

/// <summary>
/// A merge or conversion that cannot be done with the given inputs (different model families, a shape that does not
/// match, an output path that is an input). The message is one line; nothing has been written when it is thrown
/// before the output is opened, and an interrupted write leaves only a temporary file.
/// </summary>
public sealed class WorkshopException(string message) : Exception(message);
