using SharpDiffusion.Conversion;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;

namespace SharpDiffusion.Tests.Fixtures;

/// <summary>
/// Splits a single-file checkpoint into a diffusers pipeline folder by the key map in the single-file -> diffusers
/// direction, as diffusers' own converters lay it out: q/k/v row blocks cut out of OpenCLIP's in_proj, text_projection
/// transposed into a Linear weight, VAE attention convs as Linear (same bytes). Configs carry only the class name
/// (and <c>hidden_act: gelu</c> for an OpenCLIP first text encoder, as diffusers' SD 2.x configs say).
/// </summary>
internal static class DiffusersFolderWriter
{
    private static readonly Dictionary<string, (string File, string ClassName)> Components = new()
    {
        ["unet"] = ("diffusion_pytorch_model.safetensors", "UNet2DConditionModel"),
        ["vae"] = ("diffusion_pytorch_model.safetensors", "AutoencoderKL"),
        ["text_encoder"] = ("model.safetensors", "CLIPTextModel"),
        ["text_encoder_2"] = ("model.safetensors", "CLIPTextModelWithProjection"),
    };

    /// <summary>Writes the folder; returns the single-file keys that have a place in it.</summary>
    public static HashSet<string> Write(IModelFile source, string folder, bool openClipTextEncoder)
    {
        var map = CheckpointKeyMap.FromLdmKeys(source.Tensors.Select(t => t.Name));
        var byComponent = new Dictionary<string, List<TensorToWrite>>();
        var mapped = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in source.Tensors)
        {
            var bytes = new byte[t.ByteLength];
            source.ReadTensorData(t, bytes);
            foreach (var c in map.ToDiffusers(t.Name))
            {
                byte[] part = c.Transform switch
                {
                    TensorTransform.RowSlice => bytes.AsSpan((int)(bytes.Length / c.SliceCount * c.SliceIndex), bytes.Length / c.SliceCount).ToArray(),
                    TensorTransform.Transpose => Transpose(bytes, t.Shape[0], t.Shape[1], t.DType.ElementSize()),
                    _ => bytes,
                };
                if (!byComponent.TryGetValue(c.Component, out var list)) byComponent[c.Component] = list = new();
                list.Add(TensorToWrite.FromBytes(c.DiffusersKey, t.DType, c.DiffusersShapeFromLdm(t.Shape)!, part));
                mapped.Add(t.Name);
            }
        }
        Directory.CreateDirectory(folder);
        foreach (var (component, tensors) in byComponent)
        {
            var dir = Directory.CreateDirectory(Path.Combine(folder, component)).FullName;
            var (file, className) = Components[component];
            SafetensorsWriter.Write(Path.Combine(dir, file), tensors);
            string act = component == "text_encoder" && openClipTextEncoder ? ", \"hidden_act\": \"gelu\"" : "";
            File.WriteAllText(Path.Combine(dir, "config.json"), $"{{\"_class_name\": \"{className}\"{act}}}");
        }
        File.WriteAllText(Path.Combine(folder, "model_index.json"), "{\"_class_name\": \"StableDiffusionPipeline\", "
            + string.Join(", ", byComponent.Keys.Select(c => $"\"{c}\": [\"diffusers\", \"{Components[c].ClassName}\"]")) + "}");
        return mapped;
    }

    private static byte[] Transpose(byte[] data, long rows, long cols, int size)
    {
        var result = new byte[data.Length];
        for (long r = 0; r < rows; r++)
            for (long c = 0; c < cols; c++)
                Array.Copy(data, (r * cols + c) * size, result, (c * rows + r) * size, size);
        return result;
    }
}
