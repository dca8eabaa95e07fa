using System.Globalization;
using SharpDiffusion.Engine.Generation;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Png;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Training;

/// <summary>One line of a kohya sample-prompt file.</summary>
public sealed record SamplePrompt(string Prompt, string NegativePrompt, int? Width, int? Height, long? Seed, int Steps, double CfgScale, string Sampler);

/// <summary>
/// kohya's <c>--sample_prompts</c> / <c>--sample_every_n_steps</c>: a text file with one prompt per line (empty lines
/// and <c>#</c> comments skipped) and the flags <c>--n</c> negative prompt, <c>--w</c>/<c>--h</c> size, <c>--d</c> seed,
/// <c>--s</c> steps, <c>--l</c> CFG scale, <c>--ss</c> sampler (kohya's <c>line_to_prompt_dict</c>). Defaults are
/// kohya's (30 steps, scale 7.5, DDIM) except the size, which is the training resolution, and the seed, which is the
/// training seed (kohya draws a random one; a fixed one makes samples of successive steps comparable). Images are made
/// with the in-training weights through the engine's <see cref="ImageGenerator"/> and written (atomically) as
/// <c>samples/NAME_STEP_II.png</c> beside the output.
/// </summary>
public static class TrainingSamples
{
    /// <summary>Reads a prompt file.</summary>
    /// <exception cref="InvalidDataException">A missing file, a bad flag value, or no prompt at all (the message names the file and line).</exception>
    public static IReadOnlyList<SamplePrompt> Read(string path)
    {
        if (!File.Exists(path)) throw new InvalidDataException($"{path}: no such sample prompt file");
        var prompts = new List<SamplePrompt>();
        var lines = File.ReadAllLines(path);
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var parts = line.Split(" --"); // kohya's split
            string prompt = parts[0].Trim();
            string negative = "", sampler = "DDIM";
            int? width = null, height = null;
            long? seed = null;
            int steps = 30;
            double scale = 7.5;
            foreach (var part in parts.Skip(1))
            {
                int space = part.IndexOf(' ');
                if (space < 0) continue;
                string flag = part[..space].ToLowerInvariant(), value = part[(space + 1)..].Trim();
                bool ok = true;
                switch (flag)
                {
                    case "n": negative = value; break;
                    case "ss": sampler = value; break;
                    case "w": ok = int.TryParse(value, CultureInfo.InvariantCulture, out int w) && w > 0; width = w; break;
                    case "h": ok = int.TryParse(value, CultureInfo.InvariantCulture, out int h) && h > 0; height = h; break;
                    case "d": ok = long.TryParse(value, CultureInfo.InvariantCulture, out long d); seed = d; break;
                    case "s": ok = int.TryParse(value, CultureInfo.InvariantCulture, out int s); steps = Math.Clamp(s, 1, 1000); break;
                    case "l": ok = double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out scale); break;
                    default: break; // kohya's other flags (control images, ...) do not apply here
                }
                if (!ok) throw new InvalidDataException($"{path}:{i + 1}: --{flag} {value} is not a valid value");
            }
            prompts.Add(new SamplePrompt(prompt, negative, width, height, seed, steps, scale, sampler));
        }
        if (prompts.Count == 0) throw new InvalidDataException($"{path}: no prompt in the sample prompt file");
        return prompts;
    }

    /// <summary>
    /// Generates every prompt with the model as it is now (trainable branches attached) and writes the PNGs; returns
    /// their paths. Sizes are rounded down to the model's size multiple.
    /// </summary>
    public static IReadOnlyList<string> Generate(StableDiffusionCheckpoint model, IReadOnlyList<SamplePrompt> prompts, string folder,
        string outputName, long step, int defaultSize, long defaultSeed, int clipSkip)
    {
        Directory.CreateDirectory(folder);
        var written = new List<string>();
        int multiple = model.SizeMultiple;
        int Round(int size) => Math.Max(multiple, size - size % multiple);
        for (int i = 0; i < prompts.Count; i++)
        {
            var p = prompts[i];
            var request = GenerationService.Normalize(new GenerationRequest
            {
                Prompt = p.Prompt,
                NegativePrompt = p.NegativePrompt,
                Width = Round(p.Width ?? defaultSize),
                Height = Round(p.Height ?? defaultSize),
                Seed = p.Seed ?? defaultSeed,
                Steps = p.Steps,
                CfgScale = p.CfgScale,
                Sampler = p.Sampler,
                ClipSkip = clipSkip,
            });
            using var result = ImageGenerator.Generate(model, request);
            string path = Path.Combine(folder, string.Create(CultureInfo.InvariantCulture, $"{outputName}_{step:D6}_{i:D2}.png"));
            PngEncoder.Save(path, result.Images[0], result.Width, result.Height, [new("parameters",
                string.Create(CultureInfo.InvariantCulture, $"{p.Prompt}\nNegative prompt: {p.NegativePrompt}\nSteps: {request.Steps}, Sampler: {request.Sampler}, CFG scale: {request.CfgScale}, Seed: {request.Seed}, Size: {request.Width}x{request.Height}, Training step: {step}"))]);
            written.Add(path);
        }
        return written;
    }
}
