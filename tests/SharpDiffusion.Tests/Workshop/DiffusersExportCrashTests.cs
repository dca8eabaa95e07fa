using System.Diagnostics;
using SharpDiffusion.Cli;
using SharpDiffusion.Tests.Fixtures;
using SharpDiffusion.Workshop;

namespace SharpDiffusion.Tests.Workshop;

/// <summary>convert --to diffusers killed while it writes leaves no folder under the output name; a later run is unaffected.</summary>
public sealed class DiffusersExportCrashTests
{
    [Fact]
    public void Killing_the_export_mid_write_leaves_no_output_folder()
    {
        using var dir = new TempDir();
        // The full SD1.5 key set as a sparse file (holes read as zeros): the U-Net alone is 3.4 GB to write.
        string input = dir.File("sd15.safetensors"), output = dir.File("sd15-diffusers");
        SparseSafetensors.Create(input, Conversion.ReferenceInventory.SingleFile.Select(t => (t.Name, t.DType, t.Shape)));

        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { typeof(CliApp).Assembly.Location, "convert", input, "--out", output }) start.ArgumentList.Add(arg);

        using var child = Process.Start(start)!;
        var watch = Stopwatch.StartNew();
        string? temp = null;
        while (watch.Elapsed < TimeSpan.FromSeconds(120) && !child.HasExited)
        {
            temp = Directory.GetDirectories(dir.Path, ".sd15-diffusers.tmp-*").FirstOrDefault();
            string? unetFolder = temp == null ? null : Path.Combine(temp, "unet");
            var unet = unetFolder != null && Directory.Exists(unetFolder) ? Directory.GetFiles(unetFolder, "*.tmp-*").FirstOrDefault() : null;
            if (unet != null && new FileInfo(unet).Length > 16 << 20) break;
            Thread.Sleep(5);
        }
        if (child.HasExited) Assert.Fail("the export ended before it could be interrupted: " + child.StandardError.ReadToEnd());
        child.Kill(entireProcessTree: true);
        child.WaitForExit();

        Assert.NotNull(temp);
        Assert.False(Directory.Exists(output));

        // A later run ignores the leftover temporary folder and writes a complete one.
        var result = DiffusersExporter.Export(new ConvertOptions { Input = TestPaths.GoldenFile("tiny_sd1.safetensors"), Output = output });
        Assert.True(File.Exists(Path.Combine(output, "model_index.json")));
        Assert.Equal(4, result.Folders.Count);
    }
}
