using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Training;

/// <summary>
/// VAE latents of each training image at its bucket size, encoded once and kept on disk (our own format: one small
/// .safetensors per image and variant, named by a hash of the image path, size, modification time, bucket and VAE
/// file), as kohya's <c>--cache_latents_to_disk</c> does with <c>&lt;img&gt;_sd.npz</c>. Latents are
/// <c>scale_factor · posterior mean</c> (kohya samples the posterior once at caching time; the mean keeps runs a
/// function of the seed alone).
/// </summary>
public sealed class LatentCache(string folder, AutoencoderKL vae, string vaeIdentity)
{
    private readonly Dictionary<string, Tensor> _memory = new(StringComparer.Ordinal);

    public string Folder { get; } = folder;

    public Tensor Get(TrainingImage image, bool flipped)
    {
        var info = new FileInfo(image.Path);
        string identity = string.Join('|', info.FullName, info.Length.ToString(CultureInfo.InvariantCulture),
            info.LastWriteTimeUtc.Ticks.ToString(CultureInfo.InvariantCulture), image.Bucket.Width.ToString(CultureInfo.InvariantCulture),
            image.Bucket.Height.ToString(CultureInfo.InvariantCulture), flipped ? "flip" : "plain", vaeIdentity);
        string key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(identity)))[..24];
        if (_memory.TryGetValue(key, out var cached)) return cached;
        string path = Path.Combine(Folder, key + ".safetensors");
        Tensor latent;
        if (File.Exists(path))
        {
            using var file = SafetensorsFile.Open(path);
            latent = TensorReading.Read(file, file.Tensors.Single(t => t.Name == "latent"), ScalarType.Float32);
        }
        else
        {
            using var pixels = TrainingImageLoader.Load(image.Path, image.Bucket.Width, image.Bucket.Height, flipped);
            latent = vae.EncodeToLatents(pixels);
            Directory.CreateDirectory(Folder);
            SafetensorsWriter.Write(path, [LoraTrainingNetwork.FloatTensor("latent", latent, TensorDType.F32)],
                new Dictionary<string, string> { ["image"] = info.FullName, ["bucket"] = $"{image.Bucket.Width}x{image.Bucket.Height}" });
        }
        latent.DetachFromDisposeScope(); // kept for the whole run, whichever step's scope first asked for it
        _memory[key] = latent;
        return latent;
    }
}
