using SharpDiffusion.Engine.Models;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Engine.Pipeline;

/// <summary>
/// The image size a checkpoint was trained at when its config says so (our configs' top-level <c>default_size</c>:
/// sharp-emoji is a 48x48 model); null leaves the caller's default (A1111's 512).
/// </summary>
public static class ModelNativeSize
{
    public static int? Find(string checkpointPath, string? configPath = null)
    {
        var path = configPath ?? (File.Exists(checkpointPath) ? LdmConfigFile.FindBeside(checkpointPath) : null);
        if (path == null || !File.Exists(path)) return null;
        try
        {
            return (int?)ConfigTree.Integer(LdmConfigFile.Load(path).Find("default_size"));
        }
        catch (InvalidModelFileException)
        {
            return null; // the loader reports a broken config with its own message
        }
    }
}
