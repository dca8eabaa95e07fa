using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using SharpDiffusion.Engine.Upscaling;
using SharpDiffusion.Formats;
using SharpDiffusion.Png;
using static TorchSharp.torch;

namespace SharpDiffusion.Cli.Commands;

/// <summary>
/// <c>sharpdiffusion upscale IN.png --model X.pth [--scale 4] [--tile 192] [--tile-overlap 8] --out OUT.png</c>:
/// A1111's ESRGAN / Real-ESRGAN upscale (tiles, 8-bit blending, final Lanczos to the requested scale). The model is
/// a file, or a name found in <c>--models-dir</c>'s ESRGAN/, RealESRGAN/ or upscalers/ folders. Bad input: one line, exit 2.
/// </summary>
internal sealed class UpscaleCommand : ICliCommand
{
    private readonly Argument<string?> _input = new("IN") { Description = "Image to upscale (PNG, JPEG, WebP)", Arity = ArgumentArity.ZeroOrOne };
    private readonly Option<string?> _model = new("--model", "-m") { Description = "ESRGAN/Real-ESRGAN RRDBNet file (.pth/.safetensors), or its name in --models-dir" };
    private readonly Option<double?> _scale = new("--scale") { Description = "Scale factor (default: the model's); A1111 rounds the size down to a multiple of 8 and resizes with Lanczos" };
    private readonly Option<int> _tile = new("--tile") { Description = "Tile size in input pixels, 0 = whole image (A1111 default 192)", DefaultValueFactory = _ => TiledUpscaler.DefaultTileSize };
    private readonly Option<int> _overlap = new("--tile-overlap") { Description = "Tile overlap in input pixels (A1111 default 8)", DefaultValueFactory = _ => TiledUpscaler.DefaultTileOverlap };
    private readonly Option<string> _precision = new("--precision") { Description = "fp32 or bf16", DefaultValueFactory = _ => "fp32" };
    private readonly Option<string?> _out = new("--out", "-o") { Description = "Output PNG" };
    private readonly Option<string?> _modelsDir = new("--models-dir") { Description = "A1111 models folder: --model NAME is looked up in ESRGAN/, RealESRGAN/ and upscalers/" };
    private readonly Option<bool> _list = new("--list") { Description = "List the upscaler files of --models-dir and exit" };

    public Command Create(CliContext context)
    {
        var command = new Command("upscale", "Upscale an image with an ESRGAN / Real-ESRGAN model (A1111's tiling)");
        command.Arguments.Add(_input);
        foreach (var option in new Option[] { _model, _scale, _tile, _overlap, _precision, _out, _modelsDir, _list }) command.Options.Add(option);
        command.SetAction(result => Run(context, result));
        return command;
    }

    private int Run(CliContext context, ParseResult args)
    {
        string? modelsDir = args.GetValue(_modelsDir);
        if (args.GetValue(_list))
        {
            if (modelsDir == null || !Directory.Exists(modelsDir))
                return Usage(context, modelsDir == null ? "--list needs --models-dir" : $"{modelsDir}: no such folder");
            foreach (var file in UpscalerFolder.List(modelsDir)) context.Output.WriteLine($"{file.Name}\t{file.Path}");
            return ExitCodes.Success;
        }
        string? input = args.GetValue(_input), modelName = args.GetValue(_model), output = args.GetValue(_out);
        if (input == null) return Usage(context, "no input image given");
        if (modelName == null) return Usage(context, "--model is required");
        if (output == null) return Usage(context, "--out is required");
        if (!File.Exists(input)) return Usage(context, $"{input}: no such file");
        ScalarType dtype;
        switch (args.GetValue(_precision))
        {
            case "fp32": dtype = ScalarType.Float32; break;
            case "bf16": dtype = ScalarType.BFloat16; break;
            default: return Usage(context, $"--precision {args.GetValue(_precision)}: expected fp32 or bf16");
        }
        int tile = args.GetValue(_tile), overlap = args.GetValue(_overlap);
        try
        {
            TiledUpscaler.ValidateTiling(tile, overlap);
        }
        catch (ArgumentException e)
        {
            return Usage(context, e.Message);
        }

        string? modelPath = File.Exists(modelName) ? modelName : modelsDir != null ? UpscalerFolder.Find(modelsDir, modelName) : null;
        if (modelPath == null)
            return Usage(context, $"{modelName}: no such file" + (modelsDir != null ? $" (nor an upscaler of that name in {modelsDir})" : ""));

        RgbImage image;
        UpscalerModel model;
        try
        {
            image = ImageFileReader.LoadRgb(input);
            model = UpscalerModel.Load(modelPath, dtype);
        }
        catch (Exception e) when (e is InvalidModelFileException or InvalidDataException or ArgumentException)
        {
            return Usage(context, e.Message);
        }
        using (model)
        {
            double scale = args.GetValue(_scale) ?? model.Scale;
            var watch = Stopwatch.StartNew();
            RgbImage result;
            try
            {
                result = ModelUpscale.Upscale(model, image, scale, tile, overlap);
            }
            catch (ArgumentException e)
            {
                return Usage(context, e.Message);
            }
            try
            {
                PngEncoder.Save(output, result.Pixels, result.Width, result.Height);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return Usage(context, $"{output}: cannot write: {e.Message}");
            }
            context.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{model.Config} ({model.Layout}, {(dtype == ScalarType.BFloat16 ? "bf16" : "fp32")}): {image.Width}x{image.Height} -> {result.Width}x{result.Height} in {watch.Elapsed.TotalSeconds:F2} s"));
            context.Output.WriteLine(output);
        }
        return ExitCodes.Success;
    }

    private static int Usage(CliContext context, string message)
    {
        context.Fail(message);
        return ExitCodes.Usage;
    }
}
