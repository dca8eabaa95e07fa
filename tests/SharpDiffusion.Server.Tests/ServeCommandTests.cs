using SharpDiffusion.Cli;

namespace SharpDiffusion.Server.Tests;

/// <summary><c>sharpdiffusion serve</c>'s bad input: one line naming the problem and exit code 2, before anything listens.</summary>
public class ServeCommandTests
{
    private static (int Code, string Stderr) Run(params string[] args)
    {
        var stderr = new StringWriter();
        int code = CliApp.Run(args, new StringWriter(), stderr);
        return (code, stderr.ToString());
    }

    [Theory]
    [InlineData("--models-dir", "/no/such/models/folder", "--models-dir /no/such/models/folder: no such folder")]
    [InlineData("--listen", "localhost", "--listen: 'localhost' is not host:port")]
    [InlineData("--listen", "example.com:7860", "is not an IP address or localhost")]
    [InlineData("--api-auth", "justauser", "--api-auth: 'justauser' is not user:password")]
    public void BadOptionsAreOneLineAndExitCode2(string option, string value, string message)
    {
        var models = Path.Combine(Path.GetTempPath(), "sdserve-cli-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(models);
        try
        {
            var args = option == "--models-dir" ? new[] { "serve", option, value } : new[] { "serve", "--models-dir", models, option, value };
            var (code, stderr) = Run(args);
            Assert.Equal(2, code);
            Assert.Contains(message, stderr);
            Assert.Single(stderr.Trim().Split('\n'));
        }
        finally
        {
            Directory.Delete(models, recursive: true);
        }
    }
}
