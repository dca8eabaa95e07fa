namespace SharpDiffusion.Formats.Pickle;

/// <summary>A pickle that is malformed or not allowed; the caller turns it into an InvalidModelFileException.</summary>
public sealed class PickleFormatException(string message) : Exception(message);
