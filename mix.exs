# erlang_python as a dependency of a mix project:
#     {:erlang_python, git: "https://.../erlang_python.git", branch: "main"}
# (or path: "..."). No rebar3 is needed: mix compiles erlang/src itself, and the
# compiler below builds the Go sidecar into priv/pyport first (scripts/build-pyport.sh,
# which rebuilds it only when its sources changed). The application's metadata
# (version, modules it starts, registered names, description...) is read from
# erlang/src/erlang_python.app.src, the one place it is written.
defmodule Mix.Tasks.Compile.Pyport do
  @moduledoc "Builds the Go sidecar priv/pyport (scripts/build-pyport.sh)."
  use Mix.Task.Compiler

  @impl true
  def run(_args) do
    root = Path.dirname(__ENV__.file)
    script = Path.join(root, "scripts/build-pyport.sh")

    cond do
      File.regular?(script) ->
        case System.cmd("bash", [script, "priv/pyport"],
               cd: root,
               into: IO.stream(:stdio, :line),
               stderr_to_stdout: true
             ) do
          {_, 0} ->
            link_priv(root)

          {_, status} ->
            Mix.raise("pyport: scripts/build-pyport.sh failed (exit status #{status})")
        end

      File.exists?(Path.join(root, "priv/pyport")) ->
        link_priv(root)

      true ->
        Mix.raise("pyport: scripts/build-pyport.sh not found and no priv/pyport")
    end
  end

  # mix links the build's priv to the project's before the compilers run; priv (a
  # link to erlang/priv in a git checkout) only exists once the sidecar is built.
  defp link_priv(root) do
    priv = Path.join(Mix.Project.app_path(), "priv")
    File.exists?(priv) or Mix.Utils.symlink_or_copy(Path.join(root, "priv"), priv)
    {:ok, []}
  end
end

defmodule ErlangPython.MixProject do
  use Mix.Project

  @app_src "erlang/src/erlang_python.app.src"

  {:ok, [{:application, :erlang_python, app}]} = :file.consult(Path.join(__DIR__, @app_src))
  @app app

  def project do
    [
      app: :erlang_python,
      version: to_string(@app[:vsn]),
      description: to_string(@app[:description]),
      language: :erlang,
      erlc_paths: ["erlang/src"],
      erlc_options: [:debug_info],
      compilers: [:pyport | Mix.compilers()],
      deps: [],
      package: [
        files: Enum.map(@app[:files], &to_string/1),
        licenses: Enum.map(@app[:licenses], &to_string/1),
        links: Map.new(@app[:links], fn {k, v} -> {to_string(k), to_string(v)} end),
        build_tools: Enum.map(@app[:build_tools], &to_string/1)
      ]
    ]
  end

  def application do
    [
      mod: @app[:mod],
      registered: @app[:registered],
      extra_applications: @app[:applications] -- [:kernel, :stdlib],
      env: @app[:env]
    ]
  end
end
